"""Networks of MENTOR: conv encoder, MoE / MLP actor, double critic, value predictor.

Shapes: ``B`` batch, ``C`` stacked channels (3 * frame_stack * n_cameras), ``H x W`` image,
``P`` proprio length, ``A`` action dimension, ``E`` experts, ``k`` experts used per sample.
Every layer whose outputs count for the dormant ratio is recorded as a ``(G, B, n)`` tensor of
pre-activation outputs (``G`` separate layers of ``n`` neurons: 1 for a Linear, ``E`` for a
batched expert layer).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

Activations = Optional[dict]


def weight_init(module: nn.Module) -> None:
    """DrQ-v2 initialisation: orthogonal weights, zero biases (ReLU gain for convs)."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight.data)
        if module.bias is not None:
            module.bias.data.fill_(0.0)
    elif isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight.data, nn.init.calculate_gain("relu"))
        if module.bias is not None:
            module.bias.data.fill_(0.0)
    elif isinstance(module, BatchedExperts):
        module.reset_parameters()


class Encoder(nn.Module):
    """DrQ-v2 conv encoder. ``(B, C, H, W)`` uint8 (or float in [0, 255]) -> ``(B, repr_dim)`` float.

    Preprocessing ``x / 255 - 0.5`` is part of the module (and therefore of the exported graph).
    The conv output ``(B, 32, h, w)`` is flattened in (h, w, channel) order, which is free for the
    channels_last layout used in training (any fixed order is the same model: the trunk's Linear
    learns its columns in that order).
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], channels: int = 32) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.convs = nn.Sequential(  # in-place ReLUs: a conv's backward does not need its output
            nn.Conv2d(in_channels, channels, 3, stride=2), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, stride=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, stride=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, stride=1), nn.ReLU(inplace=True),
        )
        h, w = image_size
        h, w = (h - 3) // 2 + 1 - 6, (w - 3) // 2 + 1 - 6
        if h <= 0 or w <= 0:
            raise ValueError(f"image_size {image_size} is too small for the encoder")
        self.repr_dim = channels * h * w
        self.apply(weight_init)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32).div_(255.0).sub_(0.5) if image.dtype == torch.uint8 else image / 255.0 - 0.5
        return self.convs(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def trunk(in_dim: int, feature_dim: int) -> nn.Sequential:
    """Linear -> LayerNorm -> Tanh (the DrQ-v2 trunk)."""
    return nn.Sequential(nn.Linear(in_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


class BatchedExperts(nn.Module):
    """``E`` two-layer expert MLPs ``d -> h -> d_out`` evaluated as batched matmuls (no Python loop).

    Weights: ``w1 (E, d, h)``, ``b1 (E, h)``, ``w2 (E, h, d_out)``, ``b2 (E, d_out)``. Each expert is
    initialised like an orthogonal ``nn.Linear``. ``perturbable`` marks it for perturbation.
    """

    perturbable = True

    def __init__(self, num_experts: int, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(num_experts, in_dim, hidden_dim))
        self.b1 = nn.Parameter(torch.zeros(num_experts, hidden_dim))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden_dim, out_dim))
        self.b2 = nn.Parameter(torch.zeros(num_experts, out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for e in range(self.w1.shape[0]):
                nn.init.orthogonal_(self.w1[e])
                nn.init.orthogonal_(self.w2[e])
            self.b1.zero_()
            self.b2.zero_()

    def dense(self, x: torch.Tensor, acts: Activations = None, name: str = "experts") -> torch.Tensor:
        """All experts on all samples: ``x (B, d)`` -> ``(E, B, d_out)``."""
        h = torch.matmul(x.unsqueeze(0), self.w1) + self.b1.unsqueeze(1)  # (E, B, h)
        if acts is not None:
            acts[f"{name}.fc1"] = h.detach()
        y = torch.baddbmm(self.b2.unsqueeze(1), F.relu(h), self.w2)  # (E, B, d_out)
        if acts is not None:
            acts[f"{name}.fc2"] = y.detach()
        return y

    def sparse(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Only the chosen experts: ``x (B, d)``, ``idx (B, k)`` -> ``(B, k, d_out)``.

        Same values as :meth:`dense` at the chosen experts; reads only ``k`` experts' weights,
        which is what makes single-observation inference fast.
        """
        h = torch.matmul(x[:, None, None, :], self.w1[idx]).squeeze(2) + self.b1[idx]  # (B, k, h)
        y = torch.matmul(F.relu(h).unsqueeze(2), self.w2[idx]).squeeze(2) + self.b2[idx]  # (B, k, d_out)
        return y


class MoE(nn.Module):
    """Mixture-of-Experts layer with a top-k softmax gate (scores renormalised over the top k).

    ``forward(x (B, d))`` -> ``(y (B, d), routing)`` where ``routing`` holds ``probs (B, E)`` (full
    softmax, differentiable) and ``topk_idx (B, k)``. Training (and any batch) uses the dense path:
    every expert on every sample through one batched matmul, weights zero outside the top k. With
    ``sparse=True`` only the chosen experts are computed (inference).
    """

    def __init__(self, dim: int, num_experts: int, top_k: int, expert_hidden: int, gate_hidden: int,
                 gate_dropout: float) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        self.gate_fc1 = nn.Linear(dim, gate_hidden)
        self.gate_drop = nn.Dropout(gate_dropout)
        self.gate_fc2 = nn.Linear(gate_hidden, num_experts)
        self.experts = BatchedExperts(num_experts, dim, expert_hidden, dim)

    def gate(self, x: torch.Tensor, acts: Activations = None) -> torch.Tensor:
        """Gate probabilities ``(B, E)`` (softmax over experts)."""
        g = self.gate_fc1(x)
        if acts is not None:
            acts["moe.gate_fc1"] = g.detach().unsqueeze(0)
        logits = self.gate_fc2(self.gate_drop(F.relu(g)))
        if acts is not None:
            acts["moe.gate_fc2"] = logits.detach().unsqueeze(0)
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor, acts: Activations = None, sparse: bool = False):
        probs = self.gate(x, acts)
        top_vals, top_idx = torch.topk(probs, self.top_k, dim=-1)
        top_w = top_vals / top_vals.sum(dim=-1, keepdim=True)
        if sparse:
            y = (self.experts.sparse(x, top_idx) * top_w.unsqueeze(-1)).sum(dim=1)
        else:
            weights = torch.zeros_like(probs).scatter(1, top_idx, top_w)  # (B, E)
            expert_out = self.experts.dense(x, acts, "moe.experts")  # (E, B, d)
            y = torch.einsum("ebd,be->bd", expert_out, weights)
        return y, {"probs": probs, "topk_idx": top_idx}


class Actor(nn.Module):
    """Deterministic policy head: ``obs (B, repr_dim + P)`` -> mean action ``mu (B, A)`` in (-1, 1).

    trunk (Linear, LayerNorm, Tanh) -> Linear(feature, hidden) ReLU -> MoE or Linear(hidden, hidden)
    -> ReLU -> Linear(hidden, A) -> tanh.
    """

    def __init__(self, in_dim: int, action_dim: int, feature_dim: int, hidden_dim: int, use_moe: bool,
                 num_experts: int = 16, top_k: int = 4, expert_hidden: int = 256, gate_hidden: int = 256,
                 gate_dropout: float = 0.1) -> None:
        super().__init__()
        self.use_moe = use_moe
        self.trunk = trunk(in_dim, feature_dim)
        self.fc1 = nn.Linear(feature_dim, hidden_dim)
        if use_moe:
            self.moe = MoE(hidden_dim, num_experts, top_k, expert_hidden, gate_hidden, gate_dropout)
        else:
            self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, action_dim)
        self.apply(weight_init)

    def forward(self, obs: torch.Tensor, acts: Activations = None, sparse: bool = False):
        """Returns ``(mu (B, A), routing dict or None)``; fills ``acts`` with Linear outputs if given."""
        t = self.trunk[0](obs)
        if acts is not None:
            acts["trunk"] = t.detach().unsqueeze(0)
        h = self.fc1(torch.tanh(self.trunk[1](t)))
        if acts is not None:
            acts["fc1"] = h.detach().unsqueeze(0)
        h = F.relu(h)
        routing = None
        if self.use_moe:
            h, routing = self.moe(h, acts, sparse=sparse)
        else:
            h = self.fc2(h)
            if acts is not None:
                acts["fc2"] = h.detach().unsqueeze(0)
        a = self.out(F.relu(h))
        if acts is not None:
            acts["out"] = a.detach().unsqueeze(0)
        return torch.tanh(a), routing


def q_head(in_dim: int, hidden_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, 1))


class Critic(nn.Module):
    """Double Q: ``(obs (B, repr_dim + P), action (B, A))`` -> ``(q1 (B, 1), q2 (B, 1))``."""

    def __init__(self, in_dim: int, action_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = trunk(in_dim, feature_dim)
        self.q1 = q_head(feature_dim + action_dim, hidden_dim)
        self.q2 = q_head(feature_dim + action_dim, hidden_dim)
        self.apply(weight_init)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ha = torch.cat([self.trunk(obs), action], dim=-1)
        return self.q1(ha), self.q2(ha)


class ValuePredictor(nn.Module):
    """DrM state value ``V(s)``: ``obs (B, repr_dim + P)`` -> ``(B, 1)``."""

    def __init__(self, in_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = trunk(in_dim, feature_dim)
        self.v = q_head(feature_dim, hidden_dim)
        self.apply(weight_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v(self.trunk(obs))
