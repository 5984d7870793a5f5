"""Diagnostics of the MoE actor: expert-usage intensity and gradient conflict between tasks.

(a) Expert usage (the paper's figures 3 and 4). For observations labelled by task or by time step
    of an episode, the actor's routing weights ``w (N, E)`` (top-k gate scores renormalised to sum
    to 1, zero outside the top k) are averaged per label: ``usage (L, E)``, each row sums to 1.
    :func:`write_usage_heatmap` draws such a matrix as a PNG.
(b) Gradient conflict. For one batch per task, the gradient of the actor loss
    ``-min(Q1, Q2)(s, mu(s))`` with respect to all actor parameters is flattened into one vector per
    task; the pairwise cosine similarities form a symmetric ``(T, T)`` matrix with ones on the
    diagonal. Lower (more negative) off-diagonal values mean tasks pull the shared weights in
    conflicting directions; MENTOR's claim is that an MoE actor reduces this against an MLP actor.

Both accept a :class:`mentor_policy.agent.MentorAgent` (or, for (a), a
:class:`mentor_policy.policy.ActorPolicy`). Both run with dropout off and no noise (the actor's
mean action), so they are deterministic for a given model and input.

CLI: ``python -m mentor_policy.diagnostics --checkpoint CKPT --task toy --out DIR`` (see ``--help``).
"""
from __future__ import annotations

import argparse
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from mentor_policy.fileio import save_figure
from mentor_policy.frames import stack_episode


# --------------------------------------------------------------------------------------------
# Access to the networks through the agent's / policy's public attributes
# --------------------------------------------------------------------------------------------
def _policy_of(model: Any) -> Any:
    """The object holding ``encoder`` and ``actor``: an ActorPolicy, or the agent's policy."""
    for candidate in (model, getattr(model, "policy", None)):
        if candidate is not None and all(hasattr(candidate, a) for a in ("encoder", "actor", "features")):
            return candidate
    raise TypeError(f"{type(model).__name__} exposes no encoder/actor (expected a MentorAgent or ActorPolicy)")


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put modules in eval mode (no dropout) for the block; restore their previous modes after."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def _as_tensor(x: Any, dtype: torch.dtype, device: torch.device, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t.to(device=device, dtype=dtype)


def _check_obs(image: Any, proprio: Any, encoder: nn.Module) -> tuple[int, int]:
    shape = tuple(np.shape(image))
    if len(shape) != 4:
        raise ValueError(f"image must be (N, C, H, W) uint8, got shape {shape}")
    in_ch = getattr(encoder, "in_channels", shape[1])
    if shape[1] != in_ch:
        raise ValueError(f"image has {shape[1]} channels, the encoder expects {in_ch} (frame_stack * 3 * cameras)")
    p_shape = tuple(np.shape(proprio))
    if len(p_shape) != 2 or p_shape[0] != shape[0]:
        raise ValueError(f"proprio must be (N, P) with N = {shape[0]}, got shape {p_shape}")
    return shape[0], p_shape[1]


def _features(policy: Any, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
    """Actor input ``(B, repr_dim + P)``: the policy's own ``features`` (encoder output + proprio)."""
    return policy.features(image, proprio)


# --------------------------------------------------------------------------------------------
# (a) Expert usage
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpertUsage:
    """Mean routing weight per label: ``usage (L, E)`` (rows sum to 1), ``counts (L,)`` samples per label."""

    labels: tuple  # the L row labels (task names or time steps), sorted
    usage: np.ndarray  # (L, E) float64
    counts: np.ndarray  # (L,) int64


@torch.no_grad()
def routing_weights(model: Any, image: Any, proprio: Any, batch_size: int = 256) -> np.ndarray:
    """The MoE actor's routing weights for ``N`` observations.

    Args:
        model: MentorAgent or ActorPolicy with an MoE actor (``use_moe=True``).
        image: ``(N, C, H, W)`` uint8 stacked policy images. proprio: ``(N, P)`` float32.
    Returns:
        ``(N, E)`` float64: top-k gate scores renormalised over the top k, zero elsewhere; every row
        sums to 1.
    """
    policy = _policy_of(model)
    if not getattr(policy.actor, "use_moe", False):
        raise ValueError("the actor is an MLP (use_moe=False): it has no experts to route to")
    n, _ = _check_obs(image, proprio, policy.encoder)
    device = _device_of(policy.actor)
    out = []
    with _eval_mode(policy.encoder, policy.actor):
        for i in range(0, n, int(batch_size)):
            img = _as_tensor(image[i:i + batch_size], torch.uint8, device, "image")
            prop = _as_tensor(proprio[i:i + batch_size], torch.float32, device, "proprio")
            _, routing = policy.actor(_features(policy, img, prop))
            probs, idx = routing["probs"], routing["topk_idx"]
            top = probs.gather(1, idx)
            w = torch.zeros_like(probs).scatter(1, idx, top / top.sum(dim=1, keepdim=True))
            out.append(w.double().cpu().numpy())
    return np.concatenate(out, axis=0)


def expert_usage(weights: np.ndarray, labels: Sequence[Any]) -> ExpertUsage:
    """Average routing weights ``(N, E)`` over the samples of each label (``labels`` of length N)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != len(labels) or w.shape[0] == 0:
        raise ValueError(f"weights must be (N, E) with N = len(labels) > 0, got {w.shape} and {len(labels)} labels")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or inf")
    keys = sorted(set(labels), key=lambda v: (str(type(v)), v))
    index = {k: i for i, k in enumerate(keys)}
    rows = np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(labels))
    sums = np.zeros((len(keys), w.shape[1]))
    np.add.at(sums, rows, w)
    counts = np.bincount(rows, minlength=len(keys)).astype(np.int64)
    return ExpertUsage(tuple(keys), sums / counts[:, None], counts)


def expert_usage_by_task(model: Any, image: Any, proprio: Any, tasks: Sequence[str]) -> ExpertUsage:
    """Per-task expert usage (paper fig. 3): ``tasks[i]`` names the task of observation ``i``."""
    return expert_usage(routing_weights(model, image, proprio), list(tasks))


def expert_usage_by_step(model: Any, image: Any, proprio: Any, steps: Sequence[int],
                         bin_size: int = 1) -> ExpertUsage:
    """Expert usage per time step of an episode (paper fig. 4), optionally in bins of ``bin_size`` steps.

    ``steps[i]`` is the agent step within its episode of observation ``i``; rows are labelled by the
    first step of each bin.
    """
    if int(bin_size) < 1:
        raise ValueError(f"bin_size must be >= 1, got {bin_size}")
    labels = [int(s) // int(bin_size) * int(bin_size) for s in steps]
    return expert_usage(routing_weights(model, image, proprio), labels)


def write_usage_heatmap(usage: ExpertUsage, path: str | Path, title: str = "expert usage",
                        ylabel: str = "task") -> Path:
    """Write ``usage`` as a PNG heat map (rows = labels, columns = experts); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_experts = usage.usage.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * n_experts + 2), max(2.5, 0.3 * n_rows + 1.5)), dpi=120)
    im = ax.imshow(usage.usage, aspect="auto", cmap="viridis", vmin=0.0)
    ax.set_xticks(range(n_experts))
    ax.set_xlabel("expert")
    step = max(1, n_rows // 25)
    ax.set_yticks(range(0, n_rows, step))
    ax.set_yticklabels([str(usage.labels[i]) for i in range(0, n_rows, step)])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="mean routing weight")
    fig.tight_layout()
    saved = save_figure(fig, path)
    plt.close(fig)
    return saved


# --------------------------------------------------------------------------------------------
# (b) Gradient conflict
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradientConflict:
    """Pairwise cosine similarity of per-task actor gradients."""

    tasks: tuple[str, ...]  # the T task names, in matrix order
    matrix: np.ndarray  # (T, T) float64, symmetric, ones on the diagonal (0 where a gradient is zero)
    mean: float  # mean of the off-diagonal entries (NaN for a single task)
    grad_norms: np.ndarray  # (T,) L2 norm of each task's flattened gradient


def actor_loss_gradient(agent: Any, batch: Mapping[str, Any]) -> torch.Tensor:
    """Flattened gradient ``(n_actor_params,)`` of ``-min(Q1, Q2)(s, mu(s))`` w.r.t. all actor parameters.

    ``batch`` needs ``image (B, C, H, W)`` uint8 and ``proprio (B, P)`` float32 (other keys are
    ignored). No augmentation, no exploration noise, dropout off: deterministic. The encoder and
    critic are used as they are and not changed; no optimiser state is touched.
    """
    policy = _policy_of(agent)
    critic = getattr(agent, "critic", None)
    if critic is None:
        raise TypeError(f"{type(agent).__name__} has no critic: gradient conflict needs a MentorAgent")
    image, proprio = batch.get("image"), batch.get("proprio")
    if image is None or proprio is None:
        raise ValueError(f"batch needs 'image' and 'proprio', has {sorted(batch)}")
    _check_obs(image, proprio, policy.encoder)
    device = _device_of(policy.actor)
    params = [p for p in policy.actor.parameters() if p.requires_grad]
    with _eval_mode(policy.encoder, policy.actor, critic):
        with torch.no_grad():
            obs = _features(policy, _as_tensor(image, torch.uint8, device, "image"),
                            _as_tensor(proprio, torch.float32, device, "proprio"))
        mu, _ = policy.actor(obs)
        q1, q2 = critic(obs, mu)
        loss = -torch.min(q1, q2).mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]
    return torch.cat(flat).detach()


def cosine_matrix(grads: Sequence[torch.Tensor]) -> np.ndarray:
    """``(T, T)`` cosine similarities of T flat vectors (0 for a pair involving a zero vector, 1 on the diagonal)."""
    g = torch.stack([v.reshape(-1).double() for v in grads])
    norms = g.norm(dim=1)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    unit = g / safe[:, None]
    m = (unit @ unit.T).clamp(-1.0, 1.0).cpu().numpy()
    m[np.ix_((norms == 0).cpu().numpy(), np.arange(len(grads)))] = 0.0
    m[np.ix_(np.arange(len(grads)), (norms == 0).cpu().numpy())] = 0.0
    np.fill_diagonal(m, 1.0)
    return (m + m.T) / 2.0


def gradient_conflict(agent: Any, batches: Mapping[str, Mapping[str, Any]]) -> GradientConflict:
    """Cosine similarity between per-task actor gradients, one batch per task (``{task: batch}``)."""
    if not batches:
        raise ValueError("gradient_conflict needs at least one task batch")
    tasks = tuple(batches)
    grads = [actor_loss_gradient(agent, batches[t]) for t in tasks]
    m = cosine_matrix(grads)
    off = m[~np.eye(len(tasks), dtype=bool)]
    mean = float(off.mean()) if off.size else math.nan
    return GradientConflict(tasks, m, mean, np.array([float(g.norm()) for g in grads]))


def compare_gradient_conflict(agents: Mapping[str, Any], batches: Mapping[str, Mapping[str, Any]]
                              ) -> dict[str, GradientConflict]:
    """:func:`gradient_conflict` for several agents (e.g. ``{"moe": mentor, "mlp": no_moe}``) on the same batches."""
    return {name: gradient_conflict(agent, batches) for name, agent in agents.items()}


# --------------------------------------------------------------------------------------------
# Loading an agent and collecting labelled observations (CLI)
# --------------------------------------------------------------------------------------------
def load_agent(checkpoint: str | Path, device: str = "auto") -> Any:
    """Rebuild a MentorAgent from a checkpoint holding ``MentorAgent.state_dict()`` (or ``{"agent": state}``)."""
    from mentor_policy.agent import MentorAgent
    from mentor_policy.checkpoint import read_agent_state
    from mentor_policy.config import AgentConfig
    from mentor_policy.specs import EnvSpec

    state = read_agent_state(checkpoint)
    spec = dict(state["spec"])
    agent = MentorAgent(EnvSpec(**{**spec, "image_size": tuple(spec["image_size"])}),
                        AgentConfig(**state["config"]), device=device)
    agent.load_state_dict(state)
    return agent


def toy_rollouts(agent: Any, episodes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic-policy episodes on the toy task: ``image (N, C, H, W)``, ``proprio (N, P)``, ``step (N,)``."""
    from mentor_policy.toy_env import ToyReachConfig, ToyReachEnv

    policy = _policy_of(agent)
    env = ToyReachEnv(ToyReachConfig(image_size=agent.spec.image_size[0], seed=seed,
                                     proprio_position=agent.spec.proprio_dim == 2))
    fs = agent.cfg.frame_stack
    images, proprios, steps = [], [], []
    for _ in range(int(episodes)):
        o = env.reset()
        frames, props, done = [o["image"]], [o["proprio"]], False
        while not done:
            stack = stack_episode(np.stack(frames[-fs:]), fs)[-1]
            a = policy.act(stack, o["proprio"])
            for _ in range(agent.cfg.action_repeat):
                o, _, term, trunc, _ = env.step(a)
                done = term or trunc
                if done:
                    break
            frames.append(o["image"])
            props.append(o["proprio"])
        images.append(stack_episode(np.stack(frames), fs))
        proprios.append(np.stack(props))
        steps.append(np.arange(len(frames)))
    return {"image": np.concatenate(images), "proprio": np.concatenate(proprios).astype(np.float32),
            "step": np.concatenate(steps)}


def replay_observations(directory: str | Path, agent: Any, onehot_dims: int = 0,
                        max_episodes: int = 50) -> dict[str, Any]:
    """Observations from replay episode files (``ep_*.npz``, any task) with time-step and task labels.

    ``onehot_dims > 0``: the last ``onehot_dims`` proprio entries are a task one-hot (e.g. the
    multi-task peg insertion's shape); the task label is its arg-max (``"task<i>"``).
    """
    from mentor_policy.replay import load_episode_file

    files = sorted(Path(directory).glob("ep_*.npz"))[-int(max_episodes):]
    if not files:
        raise FileNotFoundError(f"no replay episodes (ep_*.npz) in {directory}")
    images, proprios, steps, tasks = [], [], [], []
    for f in files:
        ep = load_episode_file(f, agent.spec)
        images.append(stack_episode(ep["image"], agent.cfg.frame_stack))
        proprios.append(ep["proprio"])
        steps.append(np.arange(len(ep["image"])))
        if onehot_dims:
            tasks += [f"task{int(i)}" for i in ep["proprio"][:, -onehot_dims:].argmax(axis=1)]
    out = {"image": np.concatenate(images), "proprio": np.concatenate(proprios).astype(np.float32),
           "step": np.concatenate(steps)}
    if onehot_dims:
        out["task"] = tasks
    return out


def batches_by_task(data: Mapping[str, Any], batch_size: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """``{task: {"image", "proprio"}}``: up to ``batch_size`` observations per task label, drawn without
    replacement (seeded) from ``data`` (``image``, ``proprio`` and one ``task`` label per row)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data["task"])
    out = {}
    for t in sorted(set(labels.tolist())):
        idx = np.nonzero(labels == t)[0]
        idx = rng.choice(idx, size=min(batch_size, idx.size), replace=False)
        out[t] = {"image": data["image"][idx], "proprio": data["proprio"][idx]}
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Expert-usage heat maps and gradient conflict of a MentorAgent checkpoint.")
    ap.add_argument("--checkpoint", required=True, help="file holding MentorAgent.state_dict() (save_checkpoint)")
    ap.add_argument("--task", default="toy", help="'toy' (roll out the toy task) or 'replay' (read --replay-dir)")
    ap.add_argument("--replay-dir", help="directory of replay episodes ep_*.npz (with --task replay)")
    ap.add_argument("--onehot-dims", type=int, default=0,
                    help="trailing proprio dims that one-hot the task (multi-task)")
    ap.add_argument("--episodes", type=int, default=5, help="toy episodes to roll out / replay episodes to read")
    ap.add_argument("--bin", type=int, default=1, help="time-step bin size of the per-step usage")
    ap.add_argument("--batch-size", type=int, default=64, help="samples per task for the gradient conflict")
    ap.add_argument("--out", default="diagnostics", help="output directory for PNGs and diagnostics.json")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    agent = load_agent(args.checkpoint, args.device)
    if args.task == "toy":
        data = toy_rollouts(agent, args.episodes)
    elif args.task == "replay":
        if not args.replay_dir:
            ap.error("--task replay needs --replay-dir")
        data = replay_observations(args.replay_dir, agent, args.onehot_dims, args.episodes)
    else:
        ap.error("--task must be 'toy' or 'replay' (robot tasks: record episodes, then use --task replay)")
    return _report(agent, data, args)


def _report(agent: Any, data: Mapping[str, Any], args: argparse.Namespace) -> int:
    import json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"checkpoint": str(args.checkpoint), "samples": int(len(data["step"]))}
    if agent.cfg.use_moe:
        by_step = expert_usage_by_step(agent, data["image"], data["proprio"], data["step"], args.bin)
        write_usage_heatmap(by_step, out / "usage_by_step.png", "expert usage per time step", "time step")
        report["usage_by_step"] = {str(k): v.tolist() for k, v in zip(by_step.labels, by_step.usage)}
        if "task" in data:
            by_task = expert_usage_by_task(agent, data["image"], data["proprio"], data["task"])
            write_usage_heatmap(by_task, out / "usage_by_task.png", "expert usage per task", "task")
            report["usage_by_task"] = {str(k): v.tolist() for k, v in zip(by_task.labels, by_task.usage)}
    if "task" in data and len(set(data["task"])) > 1:
        gc = gradient_conflict(agent, batches_by_task(data, args.batch_size, seed=0))
        report["gradient_conflict"] = {"tasks": list(gc.tasks), "matrix": gc.matrix.tolist(), "mean": gc.mean}
        print(f"gradient conflict ({'MoE' if agent.cfg.use_moe else 'MLP'} actor): mean pairwise cosine {gc.mean:.3f}")
    (out / "diagnostics.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out}/diagnostics.json" + (" and usage heat maps" if agent.cfg.use_moe else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
