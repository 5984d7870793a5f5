"""Networks of MENTOR: conv encoder, MoE / MLP actor, double critic, value predictor.

Shapes: ``B`` batch, ``C`` stacked channels (3 * frame_stack * n_cameras), ``H x W`` image,
``P`` proprio length, ``A`` action dimension, ``E`` experts, ``k`` experts used per sample.

Observation features ``obs (B, D + P)`` are the encoder's ``D`` image features followed by the
``P`` proprio values (normalised to about [-1, 1] by the task). Every trunk (actor, critic, value
predictor) maps the image part through Linear -> LayerNorm -> Tanh to ``feature_dim`` values and
then appends the proprio part unchanged, so the robot's own state enters the MLPs at the same
scale as the image summary instead of as 4 columns among ~40k conv features.

Every actor layer that counts for the dormant ratio is recorded as a ``(G, B, n)`` tensor of its
outputs *after its nonlinearity* (DrM's definition; ``G`` separate layers of ``n`` neurons: 1 for a
Linear, ``E`` for a batched expert layer): Tanh for the trunk, ReLU for the hidden layers and the
experts (an expert's second layer feeds the ReLU that follows the mixture), softmax for the gate
logits and Tanh for the action head.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from mentor_policy.config import DRQV2_CONV_STRIDES, ENCODER_HEADS, check_conv_strides, conv_out_hw

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
    Four 3x3 convs (no padding) with ``strides`` (DrQ-v2: 2, 1, 1, 1: 35x35 maps from 84x84; 2, 2, 1, 1
    gives 16x16 maps for about a third of the conv work, the ``cpu`` preset's choice).
    Two heads on the last conv map ``(B, channels, h, w)``:

    - ``flatten`` (DrQ-v2, the paper): the map flattened in (h, w, channel) order, ``repr_dim =
      channels * h * w`` (any fixed order is the same model: the trunk's Linear learns its columns in
      that order; it is free for the channels_last layout used in training).
    - ``spatial_softmax`` (keypoints, as in deep spatial autoencoders / robomimic): a 1x1 conv to
      ``keypoints`` maps, a softmax over each map's ``h * w`` positions at a learned temperature, and
      each map's expected image coordinates ``(x, y)`` in [-1, 1] (x along the width, y along the
      height); ``repr_dim = 2 * keypoints``, ordered ``x0, y0, x1, y1, ...``. Far fewer features, and
      an object's image position is one learned filter away, which matters when a CPU affords only a
      few thousand updates.
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], channels: int = 32,
                 head: str = "flatten", keypoints: int = 32, strides: tuple[int, ...] = DRQV2_CONV_STRIDES) -> None:
        super().__init__()
        if head not in ENCODER_HEADS:
            raise ValueError(f"encoder head must be one of {ENCODER_HEADS}, got {head!r}")
        strides = check_conv_strides(strides)
        self.in_channels = in_channels
        self.head = head
        self.strides = strides
        layers: list[nn.Module] = []  # in-place ReLUs: a conv's backward does not need its output
        for i, stride in enumerate(strides):
            layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, stride=stride),
                       nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        h, w = conv_out_hw(image_size, strides)
        if h <= 0 or w <= 0:
            raise ValueError(f"image_size {image_size} is too small for an encoder with conv strides {strides}")
        self.conv_hw = (h, w)
        # the strides are part of the weights' meaning (a keypoint head's shapes do not tell them): saved with them
        self.register_buffer("conv_strides", torch.tensor(strides, dtype=torch.int64))
        if head == "flatten":
            self.repr_dim = channels * h * w
        else:
            self.keypoints = nn.Conv2d(channels, keypoints, 1)
            self.temperature = nn.Parameter(torch.ones(1))  # softmax temperature, learned
            ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, h), torch.linspace(-1.0, 1.0, w), indexing="ij")
            self.register_buffer("grid", torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1), persistent=False)
            self.repr_dim = 2 * keypoints
        self.apply(weight_init)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "conv_strides"
        if key in state_dict and tuple(int(v) for v in state_dict[key].tolist()) != self.strides:
            raise ValueError(f"the weights are for encoder conv strides {tuple(state_dict[key].tolist())}, "
                             f"this encoder has {self.strides} (set encoder_strides in the agent config)")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32).div_(255.0).sub_(0.5) if image.dtype == torch.uint8 else image / 255.0 - 0.5
        feats = self.convs(x)
        if self.head == "flatten":
            return feats.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        logits = self.keypoints(feats)  # (B, K, h, w)
        b, k = logits.shape[:2]
        attention = torch.softmax(logits.reshape(b, k, -1) / self.temperature, dim=-1)  # (B, K, h*w)
        return torch.matmul(attention, self.grid).reshape(b, 2 * k)  # (B, 2K): x0, y0, x1, y1, ...


class Trunk(nn.Module):
    """DrQ-v2 trunk on the image features, proprio appended after it.

    ``obs (B, image_dim + proprio_dim)`` -> ``(B, feature_dim + proprio_dim)``:
    ``cat(tanh(LayerNorm(Linear(obs[:, :image_dim]))), obs[:, image_dim:])``. ``linear`` and ``norm``
    keep the state-dict keys ``0.*`` / ``1.*`` of the former ``nn.Sequential`` trunk.
    """

    def __init__(self, image_dim: int, proprio_dim: int, feature_dim: int) -> None:
        super().__init__()
        self.image_dim, self.proprio_dim = image_dim, proprio_dim
        self.out_dim = feature_dim + proprio_dim
        self.add_module("0", nn.Linear(image_dim, feature_dim))
        self.add_module("1", nn.LayerNorm(feature_dim))

    @property
    def linear(self) -> nn.Linear:
        return getattr(self, "0")

    @property
    def norm(self) -> nn.LayerNorm:
        return getattr(self, "1")

    def __getitem__(self, i: int) -> nn.Module:  # trunk[0] / trunk[1], as for the Sequential it replaces
        return getattr(self, str(i))

    def forward(self, obs: torch.Tensor, acts: Activations = None, name: str = "trunk") -> torch.Tensor:
        t = torch.tanh(self.norm(self.linear(obs[:, :self.image_dim])))
        if acts is not None:
            acts[name] = t.detach().unsqueeze(0)
        if self.proprio_dim:
            t = torch.cat([t, obs[:, self.image_dim:]], dim=-1)
        return t


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
        h = F.relu(torch.matmul(x.unsqueeze(0), self.w1) + self.b1.unsqueeze(1))  # (E, B, h)
        if acts is not None:
            acts[f"{name}.fc1"] = h.detach()
        y = torch.baddbmm(self.b2.unsqueeze(1), h, self.w2)  # (E, B, d_out)
        if acts is not None:  # each expert's output feeds the ReLU after the mixture: post-ReLU values
            acts[f"{name}.fc2"] = F.relu(y.detach())
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
        g = F.relu(self.gate_fc1(x))
        if acts is not None:
            acts["moe.gate_fc1"] = g.detach().unsqueeze(0)
        probs = torch.softmax(self.gate_fc2(self.gate_drop(g)), dim=-1)
        if acts is not None:
            acts["moe.gate_fc2"] = probs.detach().unsqueeze(0)
        return probs

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
    """Deterministic policy head: ``obs (B, image_dim + P)`` -> mean action ``mu (B, A)`` in (-1, 1).

    Trunk (image part: Linear, LayerNorm, Tanh; proprio appended) -> Linear(feature + P, hidden)
    ReLU -> MoE or Linear(hidden, hidden) -> ReLU -> Linear(hidden, A) -> tanh.
    """

    def __init__(self, image_dim: int, proprio_dim: int, action_dim: int, feature_dim: int, hidden_dim: int,
                 use_moe: bool, num_experts: int = 16, top_k: int = 4, expert_hidden: int = 256,
                 gate_hidden: int = 256, gate_dropout: float = 0.1) -> None:
        super().__init__()
        self.use_moe = use_moe
        self.trunk = Trunk(image_dim, proprio_dim, feature_dim)
        self.fc1 = nn.Linear(self.trunk.out_dim, hidden_dim)
        if use_moe:
            self.moe = MoE(hidden_dim, num_experts, top_k, expert_hidden, gate_hidden, gate_dropout)
        else:
            self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, action_dim)
        self.apply(weight_init)

    def forward(self, obs: torch.Tensor, acts: Activations = None, sparse: bool = False):
        """Returns ``(mu (B, A), routing dict or None)``; fills ``acts`` with post-activation outputs if given."""
        h = F.relu(self.fc1(self.trunk(obs, acts)))
        if acts is not None:
            acts["fc1"] = h.detach().unsqueeze(0)
        routing = None
        if self.use_moe:
            h, routing = self.moe(h, acts, sparse=sparse)
            h = F.relu(h)
        else:
            h = F.relu(self.fc2(h))
            if acts is not None:
                acts["fc2"] = h.detach().unsqueeze(0)
        mu = torch.tanh(self.out(h))
        if acts is not None:
            acts["out"] = mu.detach().unsqueeze(0)
        return mu, routing


def q_head(in_dim: int, hidden_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, 1))


class Critic(nn.Module):
    """Double Q: ``(obs (B, image_dim + P), action (B, A))`` -> ``(q1 (B, 1), q2 (B, 1))``."""

    def __init__(self, image_dim: int, proprio_dim: int, action_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = Trunk(image_dim, proprio_dim, feature_dim)
        self.q1 = q_head(self.trunk.out_dim + action_dim, hidden_dim)
        self.q2 = q_head(self.trunk.out_dim + action_dim, hidden_dim)
        self.apply(weight_init)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ha = torch.cat([self.trunk(obs), action], dim=-1)
        return self.q1(ha), self.q2(ha)


class ValuePredictor(nn.Module):
    """DrM state value ``V(s)``: ``obs (B, image_dim + P)`` -> ``(B, 1)``."""

    def __init__(self, image_dim: int, proprio_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = Trunk(image_dim, proprio_dim, feature_dim)
        self.v = q_head(self.trunk.out_dim, hidden_dim)
        self.apply(weight_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v(self.trunk(obs))
