"""One head per module: camera_head (poses), dpt_head (depth and point maps), instance_adaptor and
instance_head (instance features), track_head (point tracks)."""
