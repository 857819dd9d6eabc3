"""File and object names of per-view outputs."""


def view_names(num_views: int, prefix: str, suffix: str = ".png") -> list[str]:
    """``<prefix>_000<suffix>``, ... with at least three digits, so names sort in view order."""
    digits = max(3, len(str(num_views - 1)))
    return [f"{prefix}_{view:0{digits}d}{suffix}" for view in range(num_views)]
