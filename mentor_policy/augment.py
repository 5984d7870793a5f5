"""DrQ-v2 random-shift augmentation: replicate padding and a crop at a random integer offset.

DrQ-v2 replicate-pads by ``pad`` pixels and crops back at a random integer offset (its grid_sample
lands exactly on pixel centres, so no interpolation is involved). Two kernels, one result:

- CPU: pad once, then copy each sample's window (one strided copy per sample; ~5x faster than
  an advanced-indexing gather for a (64, 6, 84, 84) uint8 batch on one core);
- other devices: one gather at clamped indices (reading the original at clamped indices is the same
  as padding with replicated edges and cropping), one kernel instead of one per sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None,
                 channels_last: bool = False) -> torch.Tensor:
    """Random shift by an independent integer offset in ``[-pad, pad]`` (x and y) per sample,
    with replicate padding at the borders.

    ``images (B, C, H, W)`` of any dtype (uint8 is cheapest) -> same shape and dtype, in the
    channels_last memory format when ``channels_last`` (else contiguous). The offsets come from
    ``generator`` as ``randint(0, 2 pad + 1, (B, 2)) - pad`` (dy, dx): both kernels draw the same.
    """
    if images.dim() != 4:
        raise ValueError(f"random_shift expects (B, C, H, W), got shape {tuple(images.shape)}")
    if pad == 0:
        return images
    b = images.shape[0]
    shift = torch.randint(0, 2 * pad + 1, (b, 2), device=images.device, generator=generator) - pad  # (B, 2)
    if images.device.type == "cpu":
        return _shift_by_windows(images, shift, pad, channels_last)
    return _shift_by_gather(images, shift, channels_last)


def _shift_by_windows(images: torch.Tensor, shift: torch.Tensor, pad: int, channels_last: bool) -> torch.Tensor:
    """Pad with replicated edges, then copy each sample's (H, W) window at offset ``pad + shift``."""
    _, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty_like(images, memory_format=fmt)
    for i, (dy, dx) in enumerate((shift + pad).tolist()):
        out[i].copy_(padded[i, :, dy:dy + h, dx:dx + w])
    return out


def _shift_by_gather(images: torch.Tensor, shift: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """Read the images at clamped row/column indices (one gather over the (B, H, W, C) view)."""
    b, _, h, w = images.shape
    dev = images.device
    rows = (shift[:, 0:1] + torch.arange(h, device=dev)).clamp_(0, h - 1)  # (B, H)
    cols = (shift[:, 1:2] + torch.arange(w, device=dev)).clamp_(0, w - 1)  # (B, W)
    bidx = torch.arange(b, device=dev)[:, None, None]
    out = images.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    out = out.permute(0, 3, 1, 2)  # (B, C, H, W) view with channels_last strides
    return out if channels_last else out.contiguous()
