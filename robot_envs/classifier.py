"""Binary image success classifier trained from operator-labelled frames (SERL-style reward).

Input: ``(H, W, 3)`` uint8 RGB frames of one camera (any size; resized to ``image_size``).
Output: probability of success in [0, 1]. Training balances the classes (every batch is half
positives, half negatives) and augments with random shifts (pad + random crop, as DrQ).
Files: ``save`` writes atomically (temp file in the same directory, fsync, rename); ``load`` uses
``torch.load(weights_only=True)``. torch is imported here only (robot_envs imports this lazily).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mentor_policy.fileio import atomic_open

_FORMAT = "mentor-success-classifier-v1"


class ClassifierError(RuntimeError):
    """Bad training data, or a classifier file that is missing, corrupt or incompatible."""


@dataclass
class ClassifierConfig:
    """Network, training and decision settings."""

    image_size: tuple[int, ...] = (64, 64)  # (H, W) the frames are resized to [px]
    channels: tuple[int, ...] = (16, 32, 32)  # conv widths (each conv: 3x3, stride 2)
    hidden: int = 64  # width of the hidden linear layer
    threshold: float = 0.85  # probability at or above which a frame counts as success
    shift_px: int = 4  # random-shift augmentation: pad by this many pixels and crop back (0 = off)
    train_steps: int = 300  # gradient steps of fit()
    batch_size: int = 32  # frames per step (half positives, half negatives)
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 1e-4  # Adam weight decay
    seed: int = 0  # seed of initialisation, batch sampling and augmentation
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", ...

    def __post_init__(self) -> None:
        if len(self.image_size) != 2 or min(int(v) for v in self.image_size) < 16:
            raise ValueError(f"image_size must be (H, W) with both >= 16, got {self.image_size}")
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if not self.channels or any(int(c) <= 0 for c in self.channels):
            raise ValueError(f"channels must be positive conv widths, got {self.channels}")
        self.channels = tuple(int(c) for c in self.channels)
        if self.hidden <= 0 or self.train_steps < 0 or self.batch_size < 2 or self.shift_px < 0:
            raise ValueError("need hidden > 0, train_steps >= 0, batch_size >= 2 and shift_px >= 0")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not (self.lr > 0 and self.weight_decay >= 0):
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class _Net(nn.Module):
    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        layers, c_in = [], 3
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2), nn.ReLU()]
            c_in = c
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            n = self.conv(torch.zeros(1, 3, *cfg.image_size)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(n, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, H, W) float in [0, 1] -> (B,) logits
        return self.head(self.conv(x - 0.5)).squeeze(-1)


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of ``(B, C, H, W)`` by up to ``pad`` pixels (replicate padding + random crop)."""
    if pad == 0:
        return x
    B, _, H, W = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=generator).tolist()
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(B)])


class SuccessClassifier:
    """A small CNN success classifier (see module docstring)."""

    def __init__(self, cfg: ClassifierConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else ClassifierConfig()
        torch.manual_seed(self.cfg.seed)
        self.device = _device(self.cfg.device)
        self.net = _Net(self.cfg).to(self.device)

    # ---- data ---------------------------------------------------------------------------------
    def _prepare(self, images: Any) -> torch.Tensor:
        """``(H, W, 3)`` or ``(N, H, W, 3)`` uint8 RGB -> ``(N, 3, h, w)`` float tensor on the device."""
        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or arr.shape[0] == 0:
            raise ClassifierError(f"images must be (H, W, 3) or (N, H, W, 3) uint8 RGB, got {arr.shape} {arr.dtype}")
        H, W = self.cfg.image_size
        if arr.shape[1:3] != (H, W):
            arr = np.stack([cv2.resize(im, (W, H), interpolation=cv2.INTER_AREA) for im in arr])
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device).permute(0, 3, 1, 2).float() / 255.0

    # ---- training -----------------------------------------------------------------------------
    def fit(self, positives: np.ndarray, negatives: np.ndarray) -> dict[str, float]:
        """Train on ``(Np, H, W, 3)`` success and ``(Nn, H, W, 3)`` failure frames (uint8 RGB).

        Returns training metrics: final ``loss`` (mean of the last 20 steps) and ``train_accuracy``.
        """
        pos, neg = self._prepare(positives), self._prepare(negatives)
        if len(pos) < 1 or len(neg) < 1:
            raise ClassifierError(f"need at least one positive and one negative frame, got {len(pos)}, {len(neg)}")
        gen = torch.Generator().manual_seed(self.cfg.seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        half = self.cfg.batch_size // 2
        labels = torch.cat([torch.ones(half), torch.zeros(half)]).to(self.device)
        losses = []
        self.net.train()
        for _ in range(self.cfg.train_steps):
            ip = torch.randint(0, len(pos), (half,), generator=gen).to(self.device)
            ineg = torch.randint(0, len(neg), (half,), generator=gen).to(self.device)
            x = random_shift(torch.cat([pos[ip], neg[ineg]]), self.cfg.shift_px, gen)
            loss = F.binary_cross_entropy_with_logits(self.net(x), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        acc = self.accuracy(positives, negatives)
        return {"loss": float(np.mean(losses[-20:])) if losses else math.nan, "train_accuracy": acc}

    # ---- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: np.ndarray) -> float | np.ndarray:
        """Success probability of one ``(H, W, 3)`` frame (float) or a ``(N, H, W, 3)`` batch (``(N,)``)."""
        self.net.eval()
        probs = torch.sigmoid(self.net(self._prepare(images))).cpu().numpy()
        return float(probs[0]) if np.asarray(images).ndim == 3 else probs

    def predict_success(self, image: np.ndarray, threshold: float | None = None) -> bool:
        """True when ``predict(image) >= threshold`` (default: the config's threshold)."""
        t = self.cfg.threshold if threshold is None else float(threshold)
        return self.predict(image) >= t

    def accuracy(self, positives: np.ndarray, negatives: np.ndarray, threshold: float = 0.5) -> float:
        """Balanced accuracy (mean of the per-class accuracies) at ``threshold``."""
        tp = float(np.mean(self.predict(np.asarray(positives)) >= threshold)) if len(positives) else math.nan
        tn = float(np.mean(self.predict(np.asarray(negatives)) < threshold)) if len(negatives) else math.nan
        return float(np.nanmean([tp, tn]))

    # ---- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write config + weights atomically to ``path``; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = dataclasses.asdict(self.cfg)
        payload = {"format": _FORMAT, "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                   "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}
        with atomic_open(path, "wb") as f:
            torch.save(payload, f)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "SuccessClassifier":
        """Load a classifier written by ``save``; ClassifierError for missing/corrupt/incompatible files."""
        path = Path(path)
        if not path.is_file():
            raise ClassifierError(f"classifier file not found: {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for truncated/garbage files
            raise ClassifierError(f"classifier file {path} is corrupt or not a torch file: {e}") from e
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ClassifierError(f"{path} is not a success-classifier file (expected format {_FORMAT!r})")
        try:
            cfg = ClassifierConfig(**{**payload["config"], **({"device": device} if device else {})})
            clf = cls(cfg)
            clf.net.load_state_dict(payload["state_dict"])
        except (TypeError, ValueError, RuntimeError, KeyError) as e:
            raise ClassifierError(f"classifier file {path} does not match this code's network: {e}") from e
        return clf
