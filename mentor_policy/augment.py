"""DrQ-v2 random-shift augmentation as an integer-shift gather.

DrQ-v2 replicate-pads by ``pad`` pixels and crops back at a random integer offset (its grid_sample
lands exactly on pixel centres). Replicate padding followed by a crop is the same as reading the
original image at clamped indices, so this does one gather, no padding and no interpolation.
"""
from __future__ import annotations

import torch


def random_shift(images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None,
                 channels_last: bool = False) -> torch.Tensor:
    """Random shift by an independent integer offset in ``[-pad, pad]`` (x and y) per sample,
    with replicate padding at the borders.

    ``images (B, C, H, W)`` of any dtype (uint8 is cheapest) -> same shape and dtype. With
    ``channels_last`` the result keeps the channels_last memory format it is produced in;
    otherwise it is made contiguous.
    """
    if images.dim() != 4:
        raise ValueError(f"random_shift expects (B, C, H, W), got shape {tuple(images.shape)}")
    if pad == 0:
        return images
    b, _, h, w = images.shape
    dev = images.device
    shift = torch.randint(0, 2 * pad + 1, (b, 2), device=dev, generator=generator) - pad  # (B, 2) = (dy, dx)
    rows = (shift[:, 0:1] + torch.arange(h, device=dev)).clamp_(0, h - 1)  # (B, H)
    cols = (shift[:, 1:2] + torch.arange(w, device=dev)).clamp_(0, w - 1)  # (B, W)
    bidx = torch.arange(b, device=dev)[:, None, None]
    # Indexing the (B, H, W, C) view gathers whole channel vectors: result (B, H, W, C).
    out = images.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]]
    out = out.permute(0, 3, 1, 2)  # (B, C, H, W) view with channels_last strides
    return out if channels_last else out.contiguous()
