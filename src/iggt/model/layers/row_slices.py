"""One function over slices of rows: the same result as one call, with a bounded working set.

Used where each row's output depends on that row alone: attention over many windows (a kernel's
grid axis caps the batch) and the instance head's per-token MLP and window attention (whose
intermediate tensors over a whole 8x grid would be the forward pass's peak).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def map_row_slices(function: Callable[..., Tensor], step: int, *tensors: Tensor) -> Tensor:
    """``function(*tensors)`` computed on slices of at most ``step`` rows (dim 0) of every tensor.

    The slices' outputs are written into one tensor of the full row count (no second copy, as a
    concatenation would hold); one plain call when the rows fit in one slice. Arguments that must
    not be sliced (a mask shared by all rows) belong in ``function``'s closure.
    """
    count = tensors[0].shape[0]
    if count <= step:
        return function(*tensors)
    out = None
    for start in range(0, count, step):
        rows = slice(start, start + step)
        piece = function(*(tensor[rows] for tensor in tensors))
        if out is None:  # the dtype and width the function gives (autocast may change the dtype)
            out = piece.new_empty(count, *piece.shape[1:])
        out[rows] = piece
    return out
