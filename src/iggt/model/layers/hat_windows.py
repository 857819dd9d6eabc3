"""Window bookkeeping for the instance head's window attention (HAT-style, non-shifted windows).

Grids of any size are handled by zero-padding at the bottom and right up to a multiple of the
window size and masking the padded keys; when the grid already is a multiple, nothing is padded
and nothing is masked, so the computation is the reference one.
"""

import torch
import torch.nn.functional as F


def pad_to_window_multiple(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, H', W', C), zero-padded at the bottom/right to multiples of window_size."""
    pad_height = (-x.shape[1]) % window_size
    pad_width = (-x.shape[2]) % window_size
    if pad_height == 0 and pad_width == 0:
        return x
    return F.pad(x, (0, 0, 0, pad_width, 0, pad_height))


def partition_windows(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C), H and W multiples of window_size -> (B * windows, window_size**2, C).

    Windows are ordered batch-major, then row-major over the window grid.
    """
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window_size, window_size, width // window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, channels)


def merge_windows(windows: torch.Tensor, window_size: int, batch: int, height: int, width: int) -> torch.Tensor:
    """Inverse of `partition_windows`: (B * windows, window_size**2, C) -> (B, H, W, C)."""
    channels = windows.shape[-1]
    x = windows.view(batch, height // window_size, width // window_size, window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, channels)


def unfold_overlapping_windows(x: torch.Tensor, window_size: int, overlap_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * windows, overlap_size**2, C), one window per window of `partition_windows`
    of the grid zero-padded to a multiple of window_size.

    Each window_size x window_size window is enlarged to overlap_size x overlap_size around its
    centre; outside the grid the enlarged window reads zeros. Same window order as `partition_windows`.
    """
    batch, height, width, channels = x.shape
    border = (overlap_size - window_size) // 2
    # One zero-padded copy (the border, plus the padding to a multiple), then one gather of strided
    # windows of it: F.unfold's im2col would add a channels-first copy and a transpose of its columns.
    padded = F.pad(x, (0, 0, border, border + (-width) % window_size, border, border + (-height) % window_size))
    windows = padded.unfold(1, overlap_size, window_size).unfold(2, overlap_size, window_size)
    return windows.permute(0, 1, 2, 4, 5, 3).reshape(-1, overlap_size * overlap_size, channels)


def window_key_mask(height: int, width: int, window_size: int, device: torch.device) -> torch.Tensor | None:
    """Which keys of each window are grid cells rather than padding: (windows, 1, 1, window_size**2) bool.

    None when the grid needs no padding (every key is real).
    """
    if height % window_size == 0 and width % window_size == 0:
        return None
    valid = torch.ones(1, height, width, 1, device=device)
    valid = partition_windows(pad_to_window_multiple(valid, window_size), window_size)
    return valid[:, None, None, :, 0] > 0


def overlapping_window_key_mask(
    height: int, width: int, window_size: int, overlap_size: int, device: torch.device
) -> torch.Tensor | None:
    """Key mask of `unfold_overlapping_windows`: (windows, 1, 1, overlap_size**2) bool, or None.

    The zero border of width (overlap_size - window_size) // 2 around the grid stays a valid key,
    as in the reference (which only supports multiples of the window size); only the padding added
    to reach a multiple of the window size is masked.
    """
    if height % window_size == 0 and width % window_size == 0:
        return None
    border = (overlap_size - window_size) // 2
    padded_height = height + (-height) % window_size
    padded_width = width + (-width) % window_size
    valid = torch.zeros(1, 1, padded_height + 2 * border, padded_width + 2 * border, device=device)
    valid[..., : height + 2 * border, : width + 2 * border] = 1
    columns = F.unfold(valid, overlap_size, stride=window_size)
    return columns[0].T[:, None, None, :] > 0


def window_relative_position_index(window_size: int) -> torch.Tensor:
    """(window_size**2, window_size**2) int64 index into a (2 * window_size - 1)**2 bias table.

    Entry (i, j) encodes the offset of query cell i from key cell j (reference layout).
    """
    coordinates = _cell_coordinates(window_size)
    offsets = coordinates[:, None, :] - coordinates[None, :, :] + (window_size - 1)
    return offsets[..., 0] * (2 * window_size - 1) + offsets[..., 1]


def overlapping_window_relative_position_index(window_size: int, overlap_size: int) -> torch.Tensor:
    """(window_size**2, overlap_size**2) int64 index into a (window_size + overlap_size - 1)**2 table.

    Reproduces the reference's formula exactly, including its negative entries (which index the
    table from the end, so every offset still gets its own row).
    """
    query = _cell_coordinates(window_size)
    key = _cell_coordinates(overlap_size)
    offsets = key[None, :, :] - query[:, None, :] + (window_size - overlap_size + 1)
    return offsets[..., 0] * (window_size + overlap_size - 1) + offsets[..., 1]


def _cell_coordinates(side: int) -> torch.Tensor:
    """(side**2, 2) (row, column) of the cells of a side x side window, row-major."""
    rows, columns = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return torch.stack([rows.flatten(), columns.flatten()], -1)
