"""Parts of the point-tracking head (VGGT's tracker, after CoTracker and VGGSfM)."""
