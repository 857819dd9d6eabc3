"""Files shipped inside the package: the example scene and (in models/) trained weights."""
