"""The acting half of the agent (encoder + actor), shared by training and deployment."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from mentor_policy.checkpoint import CheckpointError, check_state_shapes
from mentor_policy.config import AgentConfig
from mentor_policy.networks import Actor, Encoder
from mentor_policy.schedule import parse_schedule
from mentor_policy.specs import EnvSpec
from mentor_policy.utils import resolve_device


class ActorPolicy(nn.Module):
    """Encoder + actor + the current exploration std.

    ``act(image (C, H, W) uint8, proprio (P,) float32, *, explore, step) -> (A,) float32 in [-1, 1]``
    with ``C = frame_stack * spec.frame_channels``. ``forward(image (B, C, H, W) uint8,
    proprio (B, P))`` -> deterministic mean action ``(B, A)`` (what the ONNX export contains).
    """

    def __init__(self, spec: EnvSpec, cfg: AgentConfig, device: str | torch.device = "auto") -> None:
        super().__init__()
        self.spec = spec
        self.cfg = cfg
        self.device = resolve_device(device)
        self.in_channels = spec.stacked_channels(cfg.frame_stack)
        self.encoder = Encoder(self.in_channels, spec.image_size, cfg.encoder_channels, cfg.encoder_head,
                               cfg.encoder_keypoints, cfg.encoder_strides)
        self.repr_dim = self.encoder.repr_dim + spec.proprio_dim  # features(): image features, then proprio
        self.actor = Actor(self.encoder.repr_dim, spec.proprio_dim, spec.action_dim, cfg.feature_dim, cfg.hidden_dim,
                           cfg.use_moe, cfg.num_experts, cfg.moe_top_k, cfg.expert_hidden_dim, cfg.gate_hidden_dim,
                           cfg.gate_dropout)
        # exploration std when stddev_type == "dormant" (set by the agent from the dormant ratio)
        self.register_buffer("expl_std", torch.tensor(cfg.max_stddev, dtype=torch.float32))
        self.register_buffer("update_count", torch.tensor(0, dtype=torch.int64))
        self._schedule = parse_schedule(cfg.stddev_schedule)
        self._np_rng = np.random.default_rng(cfg.seed)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(cfg.seed)
        self.to(self.device)
        if cfg.channels_last:
            self.encoder.to(memory_format=torch.channels_last)

    # ----- pure functions of the weights -----
    def features(self, image: torch.Tensor, proprio: torch.Tensor | None, bf16: bool = False) -> torch.Tensor:
        """``(B, C, H, W)`` uint8 (+ ``(B, P)``) -> ``(B, repr_dim)`` float32 encoder features (+ proprio).

        ``bf16``: the encoder runs under bfloat16 autocast (its output is cast back to float32)."""
        if bf16:  # training only; acting never enters the autocast context
            with torch.autocast(self.device.type, torch.bfloat16):
                h = self.encoder(image).float()
        else:
            h = self.encoder(image)
        if self.spec.proprio_dim:
            h = torch.cat([h, proprio.to(h.dtype)], dim=-1)
        return h

    def forward(self, image: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic mean action ``(B, A)``. Uses the sparse (top-k only) MoE path."""
        mu, _ = self.actor(self.features(image, proprio), sparse=True)
        return mu

    def stddev(self, step: int) -> float:
        """Exploration std at agent step ``step``."""
        if self.cfg.stddev_type == "schedule":
            return float(self._schedule(step))
        return float(self.expl_std)

    # ----- acting -----
    def _check_obs(self, image, proprio) -> tuple[torch.Tensor, torch.Tensor | None]:
        expected = (self.in_channels, *self.spec.image_size)
        if not isinstance(image, (np.ndarray, torch.Tensor)):
            raise TypeError(f"image must be a numpy array or tensor, got {type(image).__name__}")
        if tuple(image.shape) != expected:
            raise ValueError(f"image has shape {tuple(image.shape)}, expected {expected} "
                             "(C = frame_stack * frame_channels)")
        if image.dtype not in (np.uint8, torch.uint8):
            raise ValueError(f"image must be uint8, got {image.dtype}")
        img = torch.as_tensor(image).to(self.device).unsqueeze(0)
        if not self.spec.proprio_dim:
            return img, None
        if proprio is None:
            raise ValueError(f"this policy needs a proprio vector of length {self.spec.proprio_dim}")
        if not isinstance(proprio, torch.Tensor):
            proprio = np.asarray(proprio, dtype=np.float32)
        prop = torch.as_tensor(proprio)
        if tuple(prop.shape) != (self.spec.proprio_dim,):
            raise ValueError(f"proprio has shape {tuple(prop.shape)}, expected ({self.spec.proprio_dim},)")
        if not bool(torch.isfinite(prop).all()):
            raise ValueError(f"proprio holds non-finite values: {prop.tolist()}")
        return img, prop.to(self.device, torch.float32).unsqueeze(0)

    def act(self, image, proprio=None, *, explore: bool = False, step: int = 0) -> np.ndarray:
        """One action ``(A,)`` float32 in ``[-1, 1]`` (the policy protocol, shared with ``OnnxPolicy``).

        ``explore=False``: the deterministic mean action. ``explore=True`` at agent step ``step``: uniform
        random for the first ``num_expl_steps`` steps, then mean + N(0, stddev(step)) clipped to the box."""
        img, prop = self._check_obs(image, proprio)
        eval_mode = not explore
        if explore and step < self.cfg.num_expl_steps:
            return self._np_rng.uniform(-1.0, 1.0, self.spec.action_dim).astype(np.float32)
        was_training = self.training
        if was_training:
            self.train(False)
        try:
            with torch.inference_mode():
                mu = self.forward(img, prop)[0]
                if not eval_mode:
                    noise = torch.randn(mu.shape, generator=self._generator, device=mu.device) * self.stddev(step)
                    mu = (mu + noise).clamp(-1.0, 1.0)
                action = mu.to("cpu", torch.float32).numpy()
        finally:
            if was_training:
                self.train(True)
        if not np.isfinite(action).all():
            raise FloatingPointError(f"policy produced a non-finite action {action.tolist()}")
        return action

    # ----- weights -----
    def policy_state(self) -> dict[str, torch.Tensor]:
        """CPU copy of everything needed to act (encoder, actor, exploration std, update count)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items()}

    def load_policy_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load a :meth:`policy_state` dict (shape-checked; ``CheckpointError`` names mismatches)."""
        if not isinstance(state, Mapping):
            raise CheckpointError(f"policy state must be a dict of tensors, got {type(state).__name__}")
        check_state_shapes(self, state, "policy")
        self.load_state_dict(state)
        if self.cfg.channels_last:
            self.encoder.to(memory_format=torch.channels_last)


class HoldStillPolicy:
    """The policy of a recording session (``mentor-run record``): the zero action on every dim whenever the
    operator is not driving. Actions are TCP deltas, so the arm holds its pose. Same ``act`` protocol and
    ``in_channels`` as :class:`ActorPolicy`; it has no weights to learn or load."""

    def __init__(self, spec: EnvSpec, frame_stack: int = 1) -> None:
        self.in_channels = spec.stacked_channels(frame_stack)
        self.action_dim = int(spec.action_dim)

    def act(self, image, proprio=None, *, explore: bool = False, step: int = 0) -> np.ndarray:
        """``(A,)`` float32 zeros, whatever the observation."""
        return np.zeros(self.action_dim, np.float32)
