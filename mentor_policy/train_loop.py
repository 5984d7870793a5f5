"""The plain (no ROS) online training loop: act, record episodes, update, evaluate.

Env-agnostic: any environment with ``spec`` (EnvSpec), ``reset() -> obs`` and
``step(action) -> (obs, reward, terminated, truncated, info)`` where ``obs = {"image": (C, H, W)
uint8, "proprio": (P,) float32}`` (C = ``spec.frame_channels``, one time step) works: the toy task,
robot_envs' sim and real envs. ``info.get("success")`` is used for success rates when present.

Step accounting: ``step`` counts *agent* steps (one policy action, repeated ``action_repeat`` times
in the env); ``frames = step * action_repeat`` as in DrQ-v2.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from mentor_policy.action_repeat import repeat_action
from mentor_policy.frames import FrameStacker
from mentor_policy.replay import ReplayBuffer
from mentor_policy.specs import EnvSpec
from mentor_policy.step_record import EpisodeTally, make_step_record, records_to_episode

log = logging.getLogger(__name__)


class Env(Protocol):
    """What the loop needs from an environment."""

    spec: EnvSpec

    def reset(self) -> dict[str, np.ndarray]: ...

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]: ...


class Agent(Protocol):
    """What the loop needs from an agent (MentorAgent satisfies it)."""

    def act(self, image: np.ndarray, proprio: np.ndarray, *, explore: bool, step: int) -> np.ndarray: ...

    def update(self, batch: dict[str, np.ndarray], step: int) -> dict[str, float]: ...

    def end_episode(self, episode_return: float, step: int) -> dict: ...


@dataclass
class TrainLoopConfig:
    """Settings of :func:`train` (validated on construction)."""

    frame_stack: int = 3  # time steps stacked into the policy image
    action_repeat: int = 2  # env steps per agent action (rewards are summed)
    num_seed_frames: int = 4000  # env frames collected before the first update
    update_every_steps: int = 2  # one agent update every this many agent steps
    batch_size: int = 256  # replay batch size per update
    eval_every_steps: int = 10_000  # evaluate after the first episode ending at or past each multiple (0 = never)
    num_eval_episodes: int = 10  # deterministic episodes per evaluation
    eval_at_end: bool = True  # also evaluate once after the last step
    log_every_episodes: int = 0  # log a progress line every N training episodes (0 = silent)

    def __post_init__(self) -> None:
        for name in ("frame_stack", "action_repeat", "update_every_steps", "batch_size", "num_eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainLoopConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("num_seed_frames", "eval_every_steps", "log_every_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainLoopConfig.{name} must be an int >= 0, got {value!r}")

    @classmethod
    def from_agent_config(cls, agent_cfg: Any, **overrides: Any) -> "TrainLoopConfig":
        """Take frame_stack, action_repeat, num_seed_frames, update_every_steps, batch_size from an AgentConfig."""
        keys = ("frame_stack", "action_repeat", "num_seed_frames", "update_every_steps", "batch_size")
        values = {k: getattr(agent_cfg, k) for k in keys if hasattr(agent_cfg, k)}
        values.update(overrides)
        return cls(**values)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    steps: int = 0  # agent steps taken
    frames: int = 0  # env frames (steps * action_repeat)
    num_updates: int = 0  # agent.update calls
    episode_returns: list[float] = field(default_factory=list)  # return of every finished training episode
    episode_successes: list[bool] = field(default_factory=list)  # success flag of every training episode
    evals: list[tuple[int, float, float]] = field(default_factory=list)  # (step, mean_return, success_rate)
    last_update_metrics: dict[str, float] = field(default_factory=dict)  # metrics of the last update
    wall_time_s: float = 0.0  # seconds spent in train() (summed over resumed parts)

    def to_dict(self) -> dict[str, Any]:
        """Primitives only (JSON / ``weights_only`` checkpoint safe)."""
        d = asdict(self)
        d["evals"] = [list(e) for e in self.evals]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainResult":
        """Inverse of :meth:`to_dict`; ``ValueError`` on a missing or malformed field."""
        try:
            return cls(steps=int(d["steps"]), frames=int(d["frames"]), num_updates=int(d["num_updates"]),
                       episode_returns=[float(r) for r in d["episode_returns"]],
                       episode_successes=[bool(s) for s in d["episode_successes"]],
                       evals=[(int(s), float(r), float(sr)) for s, r, sr in d["evals"]],
                       last_update_metrics={str(k): float(v) for k, v in d["last_update_metrics"].items()},
                       wall_time_s=float(d["wall_time_s"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed TrainResult state: {exc!r}") from exc


def _check_obs(obs: dict[str, np.ndarray], spec: EnvSpec) -> None:
    h, w = spec.image_size
    image, proprio = obs.get("image"), obs.get("proprio")
    if image is None or image.shape != (spec.frame_channels, h, w) or image.dtype != np.uint8:
        got = None if image is None else (image.shape, image.dtype)
        raise ValueError(f"env obs['image'] must be uint8 {(spec.frame_channels, h, w)}, got {got}")
    if proprio is None or proprio.shape != (spec.proprio_dim,):
        raise ValueError(f"env obs['proprio'] must have shape ({spec.proprio_dim},), got "
                         f"{None if proprio is None else proprio.shape}")


def _repeat_step(env: Env, action: np.ndarray, repeat: int) -> tuple[dict, float, bool, bool, bool]:
    """Apply ``action`` up to ``repeat`` times; returns (obs, reward sum, terminated, truncated, success)."""
    def once():
        obs, reward, terminated, truncated, info = env.step(action)
        return obs, reward, terminated, truncated, bool(info.get("success", False))
    return repeat_action(once, repeat)


def run_episode(agent: Agent, env: Env, cfg: TrainLoopConfig, step: int, eval_mode: bool,
                on_step: Any = None) -> tuple[list[dict], float, bool, int]:
    """Play one episode from ``env.reset()``.

    Returns ``(step_records, return, success, steps_taken)``: the records are those the policy node makes
    (:func:`mentor_policy.step_record.make_step_record`; row 0: zero action and reward) and the outcome
    is counted by :class:`~mentor_policy.step_record.EpisodeTally`, so both loops count an episode alike
    (success: ``info["success"]`` at any step). ``on_step(step)`` is called after each agent step with the
    global step (training uses it to run updates).
    """
    obs = env.reset()
    _check_obs(obs, env.spec)
    stacker = FrameStacker(cfg.frame_stack)
    image = stacker.reset(obs["image"])
    a_dim = env.spec.action_dim
    proprio = np.asarray(obs["proprio"], np.float32)
    records = [make_step_record(obs["image"], proprio, np.zeros(a_dim, np.float32), 0.0, first=True, last=False,
                                terminal=False)]
    tally, taken = EpisodeTally(), 0
    while True:
        action = np.asarray(agent.act(image, proprio, explore=not eval_mode, step=step + taken), dtype=np.float32)
        if action.shape != (a_dim,) or not np.all(np.isfinite(action)):
            raise ValueError(f"agent.act returned an invalid action {action!r} (expected finite ({a_dim},))")
        obs, reward, terminated, truncated, ok = _repeat_step(env, action, cfg.action_repeat)
        _check_obs(obs, env.spec)
        image = stacker.push(obs["image"])
        proprio = np.asarray(obs["proprio"], np.float32)
        taken += 1
        records.append(make_step_record(obs["image"], proprio, action, reward, first=False,
                                        last=terminated or truncated, terminal=terminated, success=ok))
        tally.add(records[-1])
        if on_step is not None:
            on_step(step + taken)
        if terminated or truncated:
            return records, tally.episode_return, tally.success, taken


def evaluate(agent: Agent, env: Env, cfg: TrainLoopConfig, step: int, num_episodes: int | None = None
             ) -> tuple[float, float]:
    """Mean return and success rate of the deterministic policy (``eval_mode=True``)."""
    n = cfg.num_eval_episodes if num_episodes is None else int(num_episodes)
    returns, successes = [], []
    for _ in range(n):
        _, ret, success, _ = run_episode(agent, env, cfg, step, eval_mode=True)
        returns.append(ret)
        successes.append(success)
    return float(np.mean(returns)), float(np.mean(successes))


def train(agent: Agent, env: Env, replay: ReplayBuffer, num_steps: int, cfg: TrainLoopConfig | None = None,
          eval_env: Env | None = None, start: TrainResult | None = None, checkpoint_every_steps: int = 0,
          on_checkpoint: Callable[[TrainResult], None] | None = None) -> TrainResult:
    """Train online for ``num_steps`` agent steps (whole episodes: the last one may run past it).

    Each finished episode goes to ``replay.add_episode`` and ``agent.end_episode(return, step)``.
    After ``num_seed_frames`` env frames, ``agent.update(replay.sample(batch_size), step)`` runs every
    ``update_every_steps`` agent steps. Evaluations (deterministic, on ``eval_env`` or ``env`` between
    training episodes) are recorded as ``(step, mean_return, success_rate)`` in ``TrainResult.evals``.

    Resuming: ``on_checkpoint(result)`` is called at the first episode boundary (after that episode's
    evaluation, if any) at or past each multiple of ``checkpoint_every_steps`` before ``num_steps``;
    the caller saves the result with the agent and the replay. ``start`` is such a saved result: the
    loop goes on from its step count, evaluation grid and counters (the caller restores agent and replay).
    """
    cfg = cfg if cfg is not None else TrainLoopConfig()
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if checkpoint_every_steps < 0 or (checkpoint_every_steps and on_checkpoint is None):
        raise ValueError(f"checkpoint_every_steps must be >= 0 and needs on_checkpoint, got {checkpoint_every_steps}")
    eval_env = env if eval_env is None else eval_env
    res = copy.deepcopy(start) if start is not None else TrainResult()
    t0, wall_before = time.perf_counter(), res.wall_time_s
    next_eval = _next_multiple(res.steps, cfg.eval_every_steps)
    next_checkpoint = _next_multiple(res.steps, checkpoint_every_steps)

    def on_step(step: int) -> None:
        seeded = step * cfg.action_repeat >= cfg.num_seed_frames
        if seeded and replay.num_transitions > 0 and step % cfg.update_every_steps == 0:
            res.last_update_metrics = agent.update(replay.sample(cfg.batch_size), step)
            res.num_updates += 1

    while res.steps < num_steps:
        ep, ret, success, taken = run_episode(agent, env, cfg, res.steps, eval_mode=False, on_step=on_step)
        res.steps += taken
        replay.add_episode(records_to_episode(ep))
        agent.end_episode(ret, res.steps)
        res.episode_returns.append(ret)
        res.episode_successes.append(success)
        _log_progress(res, cfg)
        if next_eval is not None and res.steps >= next_eval and res.steps < num_steps:
            res.evals.append((res.steps, *evaluate(agent, eval_env, cfg, res.steps)))
            log.info("eval at step %d: mean return %.3f, success %.2f", *res.evals[-1])
            next_eval = _next_multiple(res.steps, cfg.eval_every_steps)
        if next_checkpoint is not None and res.steps >= next_checkpoint and res.steps < num_steps:
            res.frames = res.steps * cfg.action_repeat
            res.wall_time_s = wall_before + time.perf_counter() - t0
            on_checkpoint(res)
            next_checkpoint = _next_multiple(res.steps, checkpoint_every_steps)
    if cfg.eval_at_end:
        res.evals.append((res.steps, *evaluate(agent, eval_env, cfg, res.steps)))
        log.info("final eval at step %d: mean return %.3f, success %.2f", *res.evals[-1])
    res.frames = res.steps * cfg.action_repeat
    res.wall_time_s = wall_before + time.perf_counter() - t0
    return res


def _next_multiple(step: int, every: int) -> int | None:
    """The first multiple of ``every`` above ``step`` (None when ``every`` is 0 = never)."""
    return (step // every + 1) * every if every else None


def _log_progress(res: TrainResult, cfg: TrainLoopConfig) -> None:
    n = len(res.episode_returns)
    if cfg.log_every_episodes and n % cfg.log_every_episodes == 0:
        recent = res.episode_returns[-cfg.log_every_episodes:]
        log.info("step %d episode %d: mean return %.3f over the last %d, %d updates",
                 res.steps, n, float(np.mean(recent)), len(recent), res.num_updates)
