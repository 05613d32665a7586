"""Multi-scale deformable attention's sampling as one gather: the CPU fast path's core.

Both backends sample the encoder's and decoder's value maps with the pure-PyTorch fallback of
Deformable DETR (the CUDA kernel ships for GPUs only): one ``grid_sample`` per level, then a
stacked (heads, dims, queries, levels * points) tensor multiplied by the attention weights and
summed. On a CPU that materialised tensor, not arithmetic, is the cost: about 300 MB per encoder
layer at 800 px, and the sampling took most of the encoder's time.

``sample`` computes the same sum the way the CUDA kernel does, as 4 bilinear corners per point:
the corner weights are multiplied by the attention weight up front, and one
``F.embedding_bag(mode="sum")`` gathers and sums every (query, head)'s 4 * levels * points value
rows in a single fused pass. Same corners and weights as ``grid_sample(align_corners=False,
padding_mode="zeros")``; only the order of the float additions differs (measured: max |diff|
~1e-5 on unit-scale values), so it is exact up to float rounding, not an approximation.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("autolabel_fast_sampling", default=False)


def sample(value: torch.Tensor, shapes: Sequence[tuple[int, int]], locations: torch.Tensor,
           weights: torch.Tensor) -> torch.Tensor:
    """The deformable attention output (batch, queries, heads * dims), as the fallback computes it.

    ``value`` (batch, sum(h * w), heads, dims); ``shapes`` the (h, w) of each level;
    ``locations`` (batch, queries, heads, levels, points, 2) as normalised (x, y);
    ``weights`` (batch, queries, heads, levels, points), already softmaxed.
    """
    batch, length, heads, dims = value.shape
    _, queries, _, levels, points, _ = locations.shape
    index = {"dtype": torch.int32 if batch * length * heads < 2**31 else torch.int64, "device": value.device}
    h_int = torch.tensor([h for h, _ in shapes], **index).view(1, 1, 1, levels, 1)
    w_int = torch.tensor([w for _, w in shapes], **index).view(1, 1, 1, levels, 1)
    starts = [0]
    for h, w in shapes[:-1]:
        starts.append(starts[-1] + h * w)
    # The table row of (image b, pixel p, head m) is (b * length + p) * heads + m.
    base = ((torch.arange(batch, **index).view(batch, 1, 1, 1, 1) * length
             + torch.tensor(starts, **index).view(1, 1, 1, levels, 1)) * heads
            + torch.arange(heads, **index).view(1, 1, heads, 1, 1))
    locations = locations.float()
    weights = weights.float()
    # grid_sample with align_corners=False: pixel centre i sits at (i + 0.5) / size.
    x = locations[..., 0] * w_int.float() - 0.5
    y = locations[..., 1] * h_int.float() - 0.5
    x_floor, y_floor = x.floor(), y.floor()
    fx, fy = x - x_floor, y - y_floor
    x0, y0 = x_floor.to(index["dtype"]), y_floor.to(index["dtype"])
    # A corner outside the map reads zeros (padding_mode="zeros"): weight 0, any valid row.
    wx0 = (1 - fx) * ((x0 >= 0) & (x0 < w_int))
    wx1 = fx * ((x0 >= -1) & (x0 < w_int - 1))
    wy0 = (1 - fy) * weights * ((y0 >= 0) & (y0 < h_int))
    wy1 = fy * weights * ((y0 >= -1) & (y0 < h_int - 1))
    col0 = torch.minimum(x0.clamp(min=0), w_int - 1) * heads
    col1 = torch.minimum((x0 + 1).clamp(min=0), w_int - 1) * heads
    row0 = base + torch.minimum(y0.clamp(min=0), h_int - 1) * w_int * heads
    row1 = base + torch.minimum((y0 + 1).clamp(min=0), h_int - 1) * w_int * heads
    rows = torch.stack([row0 + col0, row0 + col1, row1 + col0, row1 + col1], -1)
    corner_weights = torch.stack([wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1], -1)
    per_bag = levels * points * 4
    out = F.embedding_bag(rows.reshape(-1, per_bag), value.float().reshape(-1, dims),
                          per_sample_weights=corner_weights.reshape(-1, per_bag), mode="sum")
    return out.view(batch, queries, heads * dims).to(value.dtype)


@contextlib.contextmanager
def enabled(on: bool = True) -> Iterator[None]:
    """Inside, the ``groundingdino`` package's deformable attention samples with ``sample``.

    A context variable, so it holds for this thread's detect call only: another detector with
    the reference path may run in the same process (the benchmark runs both).
    """
    token = _ENABLED.set(on)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def install_for_groundingdino() -> None:
    """Route the package's sampling function through ``enabled`` (idempotent).

    The package's ``MultiScaleDeformableAttention.forward`` calls the module-level
    ``multi_scale_deformable_attn_pytorch``; it is replaced by a dispatcher that calls the
    original (kept as its ``__wrapped__``), with the same arguments, unless ``enabled`` is on, so
    the reference path is unchanged.
    """
    from groundingdino.models.GroundingDINO import ms_deform_attn

    current = ms_deform_attn.multi_scale_deformable_attn_pytorch
    if getattr(current, "autolabel_dispatch", False):
        return
    original: Callable[..., torch.Tensor] = current

    @functools.wraps(original)
    def dispatch(value: torch.Tensor, shapes: torch.Tensor, locations: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
        if _ENABLED.get():
            return sample(value, [(int(h), int(w)) for h, w in shapes.tolist()], locations, weights)
        return original(value, shapes, locations, weights)

    dispatch.autolabel_dispatch = True  # type: ignore[attr-defined]
    ms_deform_attn.multi_scale_deformable_attn_pytorch = dispatch


class HfSampling(nn.Module):
    """A drop-in for transformers' ``MultiScaleDeformableAttention`` (same forward signature)."""

    def forward(self, value: torch.Tensor, value_spatial_shapes: torch.Tensor,
                value_spatial_shapes_list: list[tuple[int, int]], level_start_index: torch.Tensor,
                sampling_locations: torch.Tensor, attention_weights: torch.Tensor,
                im2col_step: int) -> torch.Tensor:
        return sample(value, [(int(h), int(w)) for h, w in value_spatial_shapes_list],
                      sampling_locations, attention_weights)


def install_for_transformers(model: nn.Module) -> int:
    """Swap every transformers deformable-attention sampler in ``model`` for ``HfSampling``;
    returns how many were swapped (0: not a model of this family)."""
    swapped = 0
    for module in model.modules():
        inner = getattr(module, "attn", None)
        if isinstance(inner, nn.Module) and type(inner).__name__ == "MultiScaleDeformableAttention":
            module.attn = HfSampling()
            swapped += 1
    return swapped
