"""Agent configuration: one typed, validated dataclass and a YAML preset loader.

``load_agent_config("paper", overrides)`` merges a base preset with overlays and an overrides dict.
A name is looked up in ``mentor_policy/configs/`` (``paper``, ``tiny``, ``no_moe``, ...) or
``mentor_policy/configs/tasks/`` (``tasks/reach``); a path to a ``.yaml`` file is used as given.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mentor_policy.fileio import read_yaml_mapping
from mentor_policy.schedule import parse_schedule

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

STDDEV_TYPES = ("dormant", "awake", "schedule")
ENCODER_HEADS = ("flatten", "spatial_softmax")
ENCODER_PRECISIONS = ("fp32", "bf16")  # AgentConfig.encoder_precision
PERTURB_MODES = ("task", "random", "none")
PERTURB_FALLBACKS = ("random", "skip")
DRQV2_CONV_STRIDES = (2, 1, 1, 1)  # DrQ-v2 / the paper: 84x84 -> 35x35 conv maps


def check_conv_strides(strides: Any) -> tuple[int, ...]:
    """Validate encoder conv strides: four 3x3 convs, each of stride 1 or 2 -> a tuple of 4 ints."""
    try:
        values = tuple(strides)
    except TypeError:
        raise ValueError(f"encoder conv strides must be a list of 4 values (1 or 2), got {strides!r}") from None
    if len(values) != 4 or any(isinstance(v, bool) or v not in (1, 2) for v in values):
        raise ValueError(f"encoder conv strides must be 4 values, each 1 or 2, got {strides!r}")
    return tuple(int(v) for v in values)


def conv_out_hw(image_size: tuple[int, int], strides: tuple[int, ...] = DRQV2_CONV_STRIDES) -> tuple[int, int]:
    """(h, w) of the last conv map for an ``image_size`` (H, W) [px] input (3x3 kernels, no padding)."""
    h, w = image_size
    for s in strides:
        h, w = (h - 3) // s + 1, (w - 3) // s + 1
    return h, w


@dataclass
class AgentConfig:
    """All hyper-parameters of the MENTOR agent. Defaults are the paper's (DMC) numbers."""

    # --- observation ---
    frame_stack: int = 3  # time steps stacked on the channel axis
    action_repeat: int = 2  # env steps per agent action (used by the training loop)
    # --- networks ---
    encoder_channels: int = 32  # channels of every conv layer of the encoder
    encoder_head: str = "flatten"  # "flatten" (DrQ-v2, the paper) or "spatial_softmax" (keypoint coordinates)
    encoder_keypoints: int = 32  # keypoint maps of the spatial_softmax head (its features: 2 per keypoint)
    encoder_strides: tuple = DRQV2_CONV_STRIDES  # strides of the four 3x3 convs, each 1 or 2 (YAML: a list)
    feature_dim: int = 50  # trunk output size (Linear -> LayerNorm -> Tanh)
    hidden_dim: int = 1024  # width of the actor / critic / value MLPs
    use_moe: bool = True  # True: MoE actor (MENTOR); False: MLP actor (DrM / DrQ-v2)
    num_experts: int = 16  # experts in the MoE layer
    moe_top_k: int = 4  # experts used per sample (gate scores renormalised over these)
    expert_hidden_dim: int = 256  # hidden width of each expert MLP (hidden_dim -> this -> hidden_dim)
    gate_hidden_dim: int = 256  # hidden width of the gate MLP
    gate_dropout: float = 0.1  # dropout inside the gate MLP (training only)
    # MoE auxiliary loss = aux_loss_scale * (balance_coef * Switch balance + entropy_coef * gate entropy).
    aux_loss_scale: float = 0.002  # overall scale of the MoE auxiliary loss (0 disables it)
    aux_balance_coef: float = 1.0  # weight of the differentiable Switch-style load-balance term
    aux_entropy_coef: float = 1.0  # weight of the mean per-sample gate entropy (>0 favours confident routing)
    # --- optimisation ---
    batch_size: int = 256  # replay samples per update
    lr: float = 1e-4  # Adam learning rate of encoder, actor, critic and value predictor
    critic_tau: float = 0.01  # Polyak factor of the critic target
    nstep: int = 3  # n of the n-step return (the replay computes it; the agent receives r_n and gamma^n)
    discount: float = 0.99  # gamma
    # Actor gradient-norm clip; <= 0 disables. The reference clips at 0.001, which with Adam rescales every
    # step's gradient to one fixed norm. Off by default: on the toy task the audit measured MENTOR's final
    # success 0.45 with the clip and 0.73 without (docs/design.md). Every ablation uses the same value.
    actor_grad_clip: float = 0.0
    critic_grad_clip: float = 0.0  # critic gradient-norm clip; <= 0 disables (reference: none)
    aug_pad: int = 4  # random-shift augmentation padding in pixels (replicate padding)
    channels_last: bool = True  # run the conv encoder in channels_last memory format (faster on CPU)
    # "bf16": the conv encoder's forward and backward in an update run under bfloat16 autocast (about 1.9x
    # faster on a CPU with AMX / AVX512-BF16, and on recent GPUs); weights, optimiser state, the heads and
    # acting stay float32. "fp32" (default): everything float32, as the reference and every committed result.
    encoder_precision: str = "fp32"
    # --- exploration ---
    # "dormant": sigma from the dormant ratio (MENTOR reference); "awake": DrM's rule, the larger of that and
    # stddev_schedule run from the first update whose dormant ratio is below target; "schedule": DrQ-v2.
    stddev_type: str = "awake"
    # schedule of "awake" / "schedule" [caller's steps]; a constant also ok
    stddev_schedule: str = "linear(1.0,0.1,500000)"
    stddev_clip: float = 0.3  # clip of the policy noise in the actor and target updates
    num_expl_steps: int = 2000  # first agent steps act uniformly at random
    num_seed_frames: int = 4000  # frames collected before the first update (training loop's business)
    update_every_steps: int = 2  # one update every this many agent steps (training loop's business)
    # --- dormant ratio (DrM) ---
    dormant_threshold: float = 0.025  # a neuron is dormant when mean|act| < this * layer mean
    max_stddev: float = 0.8  # sigma = max_stddev / (1 + exp(-10 (beta - 0.2)))
    dormant_temp: float = 10.0  # slope of the sigma sigmoid
    target_dormant_ratio: float = 0.2  # centre of the sigma / lambda sigmoids
    # --- value predictor (DrM) ---
    use_value_predictor: bool = True  # False: plain DrQ-v2 target (lambda = 0)
    expectile: float = 0.9  # expectile of the value predictor's regression
    target_lambda: float = 0.6  # lambda = target_lambda / (1 + exp(lambda_temp (beta - 0.2)))
    lambda_temp: float = 50.0  # slope of the lambda sigmoid
    # --- perturbation ---
    perturb_mode: str = "task"  # "task": toward the top-K snapshots (MENTOR); "random": DrM; "none"
    perturb_interval: int = 10000  # updates between perturbations
    min_perturb_factor: float = 0.2  # alpha = clip(1 - 2 beta, min_pf, max_pf)
    max_perturb_factor: float = 0.9  # upper clip of alpha
    topk: int = 10  # K snapshots in the task-oriented store
    perturb_fallback: str = "random"  # when the store holds < 2 snapshots: "random" perturbation or "skip"
    # --- misc ---
    seed: int = 1  # seed of the torch / numpy generators of the agent

    def __post_init__(self) -> None:
        self._check_positive_ints()
        self._check_ranges()
        self._check_choices()

    def _check_positive_ints(self) -> None:
        for name in ("frame_stack", "action_repeat", "encoder_channels", "encoder_keypoints", "feature_dim",
                     "hidden_dim", "num_experts", "moe_top_k", "expert_hidden_dim", "gate_hidden_dim", "batch_size",
                     "nstep", "perturb_interval", "topk", "update_every_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"AgentConfig.{name} must be a positive int, got {value!r}")
        for name in ("num_expl_steps", "num_seed_frames", "aug_pad", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"AgentConfig.{name} must be an int >= 0, got {value!r}")
        if self.moe_top_k > self.num_experts:
            raise ValueError(f"AgentConfig.moe_top_k ({self.moe_top_k}) must be <= num_experts ({self.num_experts})")

    def _check_ranges(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"AgentConfig.{f.name} must be finite, got {value!r}")
        unit = {"gate_dropout": (0.0, 1.0, False), "critic_tau": (0.0, 1.0, True), "discount": (0.0, 1.0, True),
                "expectile": (0.0, 1.0, False), "target_lambda": (0.0, 1.0, True),
                "min_perturb_factor": (0.0, 1.0, True), "max_perturb_factor": (0.0, 1.0, True),
                "dormant_threshold": (0.0, 1.0, False)}
        for name, (lo, hi, closed) in unit.items():
            value = float(getattr(self, name))
            ok = lo <= value <= hi if closed else lo < value < hi or (name == "gate_dropout" and value == 0.0)
            if not ok:
                raise ValueError(f"AgentConfig.{name} must lie in {'[' if closed else '('}{lo}, {hi}"
                                 f"{']' if closed else ')'}, got {value}")
        if self.min_perturb_factor > self.max_perturb_factor:
            raise ValueError(f"AgentConfig.min_perturb_factor ({self.min_perturb_factor}) must be <= "
                             f"max_perturb_factor ({self.max_perturb_factor})")
        for name in ("lr", "stddev_clip", "max_stddev"):
            if float(getattr(self, name)) <= 0:
                raise ValueError(f"AgentConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("aux_loss_scale", "aux_balance_coef", "dormant_temp", "lambda_temp"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"AgentConfig.{name} must be >= 0, got {getattr(self, name)}")

    def _check_choices(self) -> None:
        self.encoder_strides = check_conv_strides(self.encoder_strides)
        if self.encoder_precision not in ENCODER_PRECISIONS:
            raise ValueError(f"AgentConfig.encoder_precision must be one of {ENCODER_PRECISIONS}, "
                             f"got {self.encoder_precision!r}")
        if self.encoder_head not in ENCODER_HEADS:
            raise ValueError(f"AgentConfig.encoder_head must be one of {ENCODER_HEADS}, got {self.encoder_head!r}")
        if self.stddev_type not in STDDEV_TYPES:
            raise ValueError(f"AgentConfig.stddev_type must be one of {STDDEV_TYPES}, got {self.stddev_type!r}")
        if self.perturb_mode not in PERTURB_MODES:
            raise ValueError(f"AgentConfig.perturb_mode must be one of {PERTURB_MODES}, got {self.perturb_mode!r}")
        if self.perturb_fallback not in PERTURB_FALLBACKS:
            raise ValueError(f"AgentConfig.perturb_fallback must be one of {PERTURB_FALLBACKS}, "
                             f"got {self.perturb_fallback!r}")
        parse_schedule(self.stddev_schedule)  # raises ValueError on a malformed schedule

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives (safe for YAML and ``torch.load(weights_only=True)``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _field_types() -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(AgentConfig)}


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = CONFIG_DIR / f"{text}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))
    raise FileNotFoundError(f"agent config {text!r} is neither a .yaml file nor a preset; presets: {known}")


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, "agent config")


def _merge(target: dict[str, Any], source: Mapping[str, Any], origin: str) -> None:
    known = _field_types()
    for key, value in source.items():
        if key not in known:
            raise ValueError(f"unknown agent config key {key!r} in {origin}; known keys: {sorted(known)}")
        target[key] = value


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """YAML reads ``1e-4`` as a string and ints where floats are meant: convert by field default type."""
    defaults = {f.name: f.default for f in dataclasses.fields(AgentConfig)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"agent config key {key!r} must be true/false, got {value!r}")
        elif isinstance(default, float) and not isinstance(value, bool):
            try:
                value = float(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"agent config key {key!r} must be a number, got {value!r}") from exc
        elif isinstance(default, str) and not isinstance(value, str):
            value = str(value)
        out[key] = value
    return out


def load_agent_config(name_or_path: str | Path | Sequence[str | Path] = "paper",
                      overrides: Mapping[str, Any] | None = None) -> AgentConfig:
    """Build an :class:`AgentConfig` from presets/overlays (merged left to right) and an overrides dict.

    ``name_or_path`` is one preset name / YAML path, or a sequence of them (e.g.
    ``["paper", "no_tp", "tasks/push"]``). A file may name its own base with a top-level
    ``base: <name>`` key, loaded first. Unknown keys raise ``ValueError`` naming the key and its origin.
    """
    names = [name_or_path] if isinstance(name_or_path, (str, Path)) else list(name_or_path)
    if not names:
        raise ValueError("load_agent_config needs at least one preset name or path")
    values: dict[str, Any] = {}
    for name in names:
        _merge_file(values, _resolve(name), depth=0)
    if overrides:
        _merge(values, dict(overrides), "overrides")
    return AgentConfig(**_coerce(values))


def _merge_file(values: dict[str, Any], path: Path, depth: int) -> None:
    if depth > 8:
        raise ValueError(f"agent config {path}: 'base' chain deeper than 8 (a cycle?)")
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is not None:
        _merge_file(values, _resolve(base), depth + 1)
    _merge(values, data, str(path))
