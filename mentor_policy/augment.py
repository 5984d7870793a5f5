"""DrQ-v2 random-shift augmentation as an integer-shift gather (exactly equivalent to DrQ-v2's
grid_sample at integer offsets, without interpolation work)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None,
                 channels_last: bool = False) -> torch.Tensor:
    """Replicate-pad by ``pad`` pixels, then crop back at an independent random offset per sample.

    ``images (B, C, H, W)`` of any dtype (uint8 is cheapest) -> same shape and dtype. Offsets are
    uniform integers in ``[0, 2 * pad]`` for x and y separately. With ``channels_last`` the result
    is returned in channels_last memory format (it is produced in that layout for free).
    """
    if images.dim() != 4:
        raise ValueError(f"random_shift expects (B, C, H, W), got shape {tuple(images.shape)}")
    if pad == 0:
        return images
    b, c, h, w = images.shape
    padded = _replicate_pad(images, pad)  # (B, C, H + 2p, W + 2p)
    dev = images.device
    shift = torch.randint(0, 2 * pad + 1, (b, 2), device=dev, generator=generator)
    rows = shift[:, 0:1] + torch.arange(h, device=dev)  # (B, H)
    cols = shift[:, 1:2] + torch.arange(w, device=dev)  # (B, W)
    bidx = torch.arange(b, device=dev)[:, None, None]
    # Advanced indexing with a slice in the middle puts the indexed dims first: (B, H, W, C).
    out = padded.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]]
    out = out.permute(0, 3, 1, 2)  # (B, C, H, W) view with channels_last strides
    return out if channels_last else out.contiguous()


def _replicate_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    if images.dtype.is_floating_point:
        return F.pad(images, (pad, pad, pad, pad), mode="replicate")
    # replicate padding is not implemented for integer tensors: pad by index clamping instead.
    b, c, h, w = images.shape
    ri = (torch.arange(h + 2 * pad, device=images.device) - pad).clamp_(0, h - 1)
    ci = (torch.arange(w + 2 * pad, device=images.device) - pad).clamp_(0, w - 1)
    return images[:, :, ri[:, None], ci[None, :]]
