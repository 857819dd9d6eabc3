"""model/heads."""
