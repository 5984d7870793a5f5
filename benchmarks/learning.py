"""Learning-curve benchmark: train agent configs on one task over several seeds, evaluate, plot.

Each (config, seed) run trains a fresh agent for ``--steps`` agent steps and evaluates the
deterministic policy (``eval_mode=True``) for ``--eval-episodes`` episodes every ``--eval-every``
steps (and at step 0). Results go to ``--out``:

- ``runs/<config>_seed<seed>/eval.csv``  that run's evaluations (written atomically when the run ends)
- ``runs/<config>_seed<seed>/done.json`` written when the run finished (finished runs are skipped on a rerun)
- ``runs/<config>_seed<seed>/resume.ckpt`` a mid-run checkpoint every ``--checkpoint-every`` agent steps
  (agent with optimisers and RNGs, counters, evaluations so far; the replay and top-K store are on disk
  beside it): a killed run goes on from its last checkpoint when the benchmark is started again. The
  episodes stored after that checkpoint are dropped and the episode in progress is lost; the resumed
  part's envs and replay sampler get a fresh seed stream, so a resumed run is statistically like an
  uninterrupted one but not bit-identical to it
- ``results.csv``  all runs: ``config, task, seed, step, eval_return, success_rate, wall_time``
- ``success_rate.png`` / ``eval_return.png``  seed mean with a min..max band, one line per config
- ``summary.json``  steps to ``--threshold`` success per config, final numbers, settings

Configs: ``mentor`` (MoE + task-oriented perturbation), ``no_tp`` (DrM random perturbation),
``no_moe`` (MLP actor), ``drqv2`` (MLP, scheduled noise, no perturbation, no value predictor).
Tasks: ``toy``, ``reach``, ``push``, ``peg_insertion`` (robot_envs sim tasks, on the directly stepped
MuJoCo backend by default, ``--backend sim`` for franky-sim), ``dmc:<domain>_<task>``, ``metaworld:<task>``.

Reach on the CPU preset, one process per core (each run ~15-20 min per 10k steps on this 2-core machine):
  nice .venv/bin/python benchmarks/learning.py --task reach --preset cpu --task-overlay none --torch-threads 1 \
      --steps 10000 --eval-every 1000 --eval-episodes 10 --only mentor:0 --out benchmarks/results/reach_cpu

Example (CPU, minutes):
  .venv/bin/python benchmarks/learning.py --task toy --configs mentor,no_moe --seeds 0,1 \
      --steps 3000 --eval-every 500 --eval-episodes 5 --out benchmarks/results/toy
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.plot_learning import CSV_FIELDS, aggregate, plot_curves, read_results, steps_to_threshold  # noqa: E402
from mentor_policy.fileio import atomic_write_text  # noqa: E402

# Agent-config overlays (mentor_policy/configs/<name>.yaml) merged onto the base preset per config.
CONFIG_OVERLAYS: dict[str, tuple[str, ...]] = {
    "mentor": (),
    "no_tp": ("no_tp",),
    "no_moe": ("no_moe",),
    "drqv2": ("drqv2",),
}
SIM_TASKS = ("reach", "push", "peg_insertion")
SIM_BACKENDS = ("mujoco", "sim")  # robot_envs backends for the sim tasks


@dataclass
class LearningBenchmarkConfig:
    """One benchmark: configs x seeds on one task."""

    task: str  # "toy", a robot_envs sim task ("reach", "peg_insertion"), "dmc:<domain>_<task>" or "metaworld:<task>"
    out: Path  # output directory (created); finished runs inside it are reused
    configs: tuple[str, ...] = ("mentor", "no_tp", "no_moe", "drqv2")  # agent configs to compare (CONFIG_OVERLAYS keys)
    seeds: tuple[int, ...] = (0, 1, 2)  # one run per seed and config
    steps: int = 20_000  # agent steps of training per run (an agent step = action_repeat env steps)
    eval_every: int = 2_000  # agent steps between evaluations
    eval_episodes: int = 5  # deterministic-policy episodes per evaluation
    preset: str = "tiny"  # base agent preset the config overlays are merged onto ("tiny" on CPU, "paper" on GPU)
    agent_overrides: dict[str, Any] = field(default_factory=dict)  # AgentConfig fields set last (after overlays)
    env_overrides: dict[str, Any] = field(default_factory=dict)  # keyword overrides passed to the env constructor
    runtime_overrides: dict[str, Any] = field(default_factory=dict)  # sim tasks: robot_envs EnvConfig fields (timeouts)
    sim_overrides: dict[str, Any] = field(default_factory=dict)  # sim tasks on backend "sim": SimBackendConfig fields
    backend: str = "mujoco"  # sim tasks: "mujoco" (directly stepped, ~40 env steps/s) or "sim" (franky-sim, ~4/s)
    # agent overlay for the task: "auto" (the suite's/task's overlay, paper preset only), "none", or a name
    task_overlay: str = "auto"
    threshold: float = 0.8  # success rate whose first crossing (seed mean) is reported
    device: str = "auto"  # torch device: "auto" = CUDA when present, else CPU
    replay_capacity: int = 100_000  # transitions kept per run
    checkpoint_every: int = 1_000  # agent steps between mid-run checkpoints (0 = none: a killed run restarts)
    demo_dir: str = ""  # a demo store (robot_envs.experts) loaded into each run's demonstration buffer ("" = none)
    demo_ratio: float = 0.5  # share of each batch from the demonstrations (with demo_dir; RLPD-style)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.configs = tuple(self.configs)
        self.seeds = tuple(int(s) for s in self.seeds)
        unknown = [c for c in self.configs if c not in CONFIG_OVERLAYS]
        if unknown or not self.configs:
            raise ValueError(f"unknown configs {unknown} (or none given); choose from {sorted(CONFIG_OVERLAYS)}")
        if len(set(self.configs)) != len(self.configs) or len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"configs and seeds must be non-empty and unique, got {self.configs}, {self.seeds}")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be >= 0, got {self.seeds}")
        for name in ("steps", "eval_every", "eval_episodes", "replay_capacity"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= float(self.demo_ratio) <= 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1], got {self.demo_ratio}")
        if self.demo_dir and not Path(self.demo_dir).is_dir():
            raise ValueError(f"demo_dir {self.demo_dir} is not a directory")
        if int(self.checkpoint_every) < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if int(self.steps) % int(self.eval_every):
            raise ValueError(f"steps ({self.steps}) must be a multiple of eval_every ({self.eval_every}) so that "
                             "evaluations of different seeds line up on one step grid")
        if not 0.0 < float(self.threshold) <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.backend not in SIM_BACKENDS:
            raise ValueError(f"backend must be one of {SIM_BACKENDS}, got {self.backend!r}")
        if self.sim_overrides and self.backend != "sim":
            raise ValueError("--sim options set franky-sim's SimBackendConfig: use them with --backend sim")
        if not self.task or not isinstance(self.task, str):
            raise ValueError(f"task must be a non-empty string, got {self.task!r}")


# --------------------------------------------------------------------------------------------
# Small helpers: overrides, atomic writes
# --------------------------------------------------------------------------------------------
def parse_overrides(items: Optional[list[str]]) -> dict[str, Any]:
    """``["lr=3e-4", "use_moe=false"]`` -> ``{"lr": 0.0003, "use_moe": False}``.

    Each value is parsed with ``yaml.safe_load`` (numbers, booleans, strings, lists), never eval.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ValueError(f"override {item!r}: value is not valid YAML: {exc}") from exc
        out[key] = _yaml11_float(value)
    return out


def _yaml11_float(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string: turn such number-looking strings into floats."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if np.isfinite(number) else value
    return value


def rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r[k] for k in CSV_FIELDS})
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Environments and agents
# --------------------------------------------------------------------------------------------
def make_env(task: str, seed: int, overrides: dict[str, Any], runtime: Optional[dict[str, Any]] = None,
             sim: Optional[dict[str, Any]] = None, backend: str = "mujoco"):
    """Build the env for ``task`` seeded with ``seed``; ``overrides`` go to its config.

    Sim robot tasks only: ``backend`` is "mujoco" (robot_envs.sim.direct) or "sim" (franky-sim);
    ``runtime`` sets ``robot_envs.env.EnvConfig`` fields (e.g. a longer ``camera_timeout_s`` on a
    busy machine) and ``sim`` sets franky-sim's ``SimBackendConfig`` fields.

    Suite adapters are built with ``action_repeat=1``: the training loop repeats actions itself
    (``AgentConfig.action_repeat``), so agent steps mean the same on every task.
    """
    from robot_envs.suites import is_suite_task, make_suite_env

    if (runtime or sim) and task not in SIM_TASKS:
        raise ValueError(f"--env-runtime/--sim options apply to the sim robot tasks {SIM_TASKS} only, not {task!r}")
    if task == "toy":
        from mentor_policy.toy_env import ToyReachConfig, ToyReachEnv

        return ToyReachEnv(ToyReachConfig(**{"seed": seed, **overrides}))
    if is_suite_task(task):
        return make_suite_env(task, **{"seed": seed, "action_repeat": 1, **overrides})
    if task in SIM_TASKS:
        import robot_envs.env as robot_env

        env_config = robot_env.EnvConfig(**{**(runtime or {}), "seed": seed})
        if backend == "mujoco":
            if sim:
                raise ValueError("SimBackendConfig options are for backend 'sim' (franky-sim), not 'mujoco'")
            return robot_env.make(task, backend="mujoco", env_config=env_config, **overrides)
        sim_config = robot_env.SimBackendConfig(**(sim or {}))
        return robot_env.make(task, backend="sim", env_config=env_config, sim=sim_config, **overrides)
    raise ValueError(f"unknown task {task!r}: use toy, {', '.join(SIM_TASKS)}, dmc:<domain>_<task> or metaworld:<task>")


def uses_separate_eval_env(task: str, backend: str = "mujoco") -> bool:
    """Evaluation episodes get their own env (and seed stream), except on franky-sim: a second
    franky-sim world runs its physics in real time beside the first and would double the CPU load."""
    return task not in SIM_TASKS or backend != "sim"


def task_overlays(bench: LearningBenchmarkConfig) -> tuple[str, ...]:
    """Per-task agent overlays (mentor_policy/configs/tasks/) merged between the preset and the config overlay.

    ``auto`` applies the suite's / task's paper settings (e.g. Meta-World's sigma 1.0, perturb every
    50k updates) only on the ``paper`` preset: on ``tiny`` CPU runs such intervals would mean the
    perturbation never fires.
    """
    from mentor_policy.config import CONFIG_DIR

    if bench.task_overlay == "none":
        return ()
    if bench.task_overlay != "auto":
        return (bench.task_overlay,)
    if bench.preset != "paper":
        return ()
    name = bench.task.split(":", 1)[0] if ":" in bench.task else bench.task
    return (f"tasks/{name}",) if (CONFIG_DIR / "tasks" / f"{name}.yaml").is_file() else ()


def agent_config_for(bench: LearningBenchmarkConfig, config: str, seed: int):
    """The AgentConfig of one run: preset, task overlay, the config's overlays, the user's overrides, the seed."""
    from mentor_policy.config import load_agent_config

    overrides = {**bench.agent_overrides, "seed": int(seed)}
    return load_agent_config([bench.preset, *task_overlays(bench), *CONFIG_OVERLAYS[config]], overrides)


class _EvalTimer:
    """Wraps the eval env and records the wall time at which each evaluation's last episode ended.

    ``train_loop.train`` evaluates ``episodes_per_eval`` episodes back to back on the eval env, so
    every ``episodes_per_eval``-th finished episode closes one evaluation. Training episodes run on
    the unwrapped env (even when it is the same object), so only evaluation episodes are counted.
    """

    def __init__(self, env: Any, episodes_per_eval: int, t0: float) -> None:
        self.env, self.spec = env, env.spec
        self._per_eval, self._t0, self._finished = episodes_per_eval, t0, 0
        self.times: list[float] = []

    def reset(self) -> dict[str, np.ndarray]:
        return self.env.reset()

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self._finished += 1
            if self._finished % self._per_eval == 0:
                self.times.append(time.perf_counter() - self._t0)
        return obs, reward, terminated, truncated, info


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------
def run_dir(bench: LearningBenchmarkConfig, config: str, seed: int) -> Path:
    return bench.out / "runs" / f"{config}_seed{seed}"


def is_finished(bench: LearningBenchmarkConfig, config: str, seed: int) -> bool:
    return (run_dir(bench, config, seed) / "done.json").is_file()


RESUME_FILE = "resume.ckpt"  # a run's mid-run checkpoint (mentor_policy.checkpoint format)
RESUME_VERSION = 1
RESUME_SEED_STRIDE = 7919  # part p of a resumed run seeds its envs and replay sampler with seed + p * stride
_RESUME_KEYS = ("version", "part", "agent", "progress", "replay_episodes", "eval0", "elapsed_s", "eval_times")


def load_resume(rdir: Path, log: Callable[[str], None] = print) -> Optional[dict]:
    """The run's mid-run checkpoint, or None when there is none or it cannot be used (reported)."""
    from mentor_policy.checkpoint import CheckpointError, load_checkpoint, require_entries

    path = rdir / RESUME_FILE
    if not path.is_file():
        return None
    try:
        state = require_entries(load_checkpoint(path), path, _RESUME_KEYS, "a benchmark run's resume checkpoint")
        if state["version"] != RESUME_VERSION:
            raise CheckpointError(f"{path}: resume version {state['version']!r}, expected {RESUME_VERSION}")
        return dict(state)
    except CheckpointError as exc:
        log(f"cannot resume from {path} ({exc}): the run starts again from zero")
        return None


def run_one(bench: LearningBenchmarkConfig, config: str, seed: int, log: Callable[[str], None] = print) -> list[dict]:
    """Train and evaluate one (config, seed), from its mid-run checkpoint when there is one; returns its
    CSV rows and marks the run finished."""
    import torch

    from mentor_policy.agent import MentorAgent
    from mentor_policy.checkpoint import save_checkpoint
    from mentor_policy.replay import ReplayBuffer, ReplayConfig, discard_episodes_from
    from mentor_policy.train_loop import TrainLoopConfig, TrainResult, evaluate, train

    rdir = run_dir(bench, config, seed)
    resume = load_resume(rdir, log) if rdir.exists() else None
    if resume is None:
        if rdir.exists():  # an unfinished attempt without a usable checkpoint: start it again from scratch
            shutil.rmtree(rdir)
        rdir.mkdir(parents=True)
    else:
        dropped = discard_episodes_from(rdir / "replay", int(resume["replay_episodes"]))
        log(f"[{config} seed {seed}] resuming at step {resume['progress']['steps']} (part {resume['part'] + 1}; "
            f"{len(dropped)} episode(s) stored after the checkpoint dropped)")
    part = 0 if resume is None else int(resume["part"]) + 1
    part_seed = seed + RESUME_SEED_STRIDE * part
    cfg = agent_config_for(bench, config, seed)
    np.random.seed(part_seed)
    torch.manual_seed(seed)
    env = make_env(bench.task, part_seed, bench.env_overrides, bench.runtime_overrides, bench.sim_overrides,
                   bench.backend)
    eval_base = env
    try:
        if uses_separate_eval_env(bench.task, bench.backend):  # evaluation episodes get their own seed stream
            eval_base = make_env(bench.task, part_seed + 100_000, bench.env_overrides, bench.runtime_overrides,
                                 bench.sim_overrides, bench.backend)
        agent = MentorAgent(env.spec, cfg, device=bench.device, store_dir=rdir / "topk")
        if resume is not None:
            agent.load_state_dict(resume["agent"])
        replay_cfg = ReplayConfig(capacity=bench.replay_capacity, frame_stack=cfg.frame_stack, nstep=cfg.nstep,
                                  discount=cfg.discount, batch_size=cfg.batch_size, seed=part_seed, fsync=False)
        replay = ReplayBuffer(rdir / "replay", replay_cfg, env.spec)
        online = replay
        if bench.demo_dir:  # demonstrations in a buffer of their own, a fixed share of every batch
            from mentor_policy.mixed_replay import MixedReplay
            from mentor_policy.replay import seed_episodes
            demos = ReplayBuffer(rdir / "demos", replay_cfg, env.spec)
            seed_episodes(demos, bench.demo_dir, env.spec, "demo")
            replay = MixedReplay(online, demos, bench.demo_ratio)
        loop_cfg = TrainLoopConfig.from_agent_config(
            cfg, eval_every_steps=bench.eval_every, num_eval_episodes=bench.eval_episodes, eval_at_end=True)
        elapsed_before = 0.0 if resume is None else float(resume["elapsed_s"])
        t0 = time.perf_counter() - elapsed_before
        timer = _EvalTimer(eval_base, bench.eval_episodes, t0)
        if resume is None:
            ret0, succ0 = evaluate(agent, timer, loop_cfg, 0)
        else:
            (ret0, succ0), timer.times = resume["eval0"], [float(t) for t in resume["eval_times"]]

        def save_resume(progress: TrainResult) -> None:
            save_checkpoint(rdir / RESUME_FILE, {
                "version": RESUME_VERSION, "part": part, "agent": agent.state_dict(), "progress": progress.to_dict(),
                "replay_episodes": online.episodes_added, "eval0": [float(ret0), float(succ0)],
                "elapsed_s": time.perf_counter() - t0, "eval_times": list(timer.times)})

        start = None if resume is None else TrainResult.from_dict(resume["progress"])
        result = train(agent, env, replay, bench.steps, loop_cfg, eval_env=timer, start=start,
                       checkpoint_every_steps=bench.checkpoint_every, on_checkpoint=save_resume)
    finally:
        env.close()
        if eval_base is not env:
            eval_base.close()
    evals = [(0, ret0, succ0), *result.evals]
    if len(timer.times) != len(evals):
        raise RuntimeError(f"internal: {len(evals)} evaluations but {len(timer.times)} timings")
    rows = [{"config": config, "task": bench.task, "seed": seed, "step": int(s), "eval_return": float(r),
             "success_rate": float(sr), "wall_time": round(t, 3)} for (s, r, sr), t in zip(evals, timer.times)]
    atomic_write_text(rdir / "eval.csv", rows_to_csv(rows))
    done = {"config": config, "seed": seed, "task": bench.task, "steps": result.steps, "frames": result.frames,
            "num_updates": result.num_updates, "episodes": len(result.episode_returns),
            "train_success_rate_last10": float(np.mean(result.episode_successes[-10:] or [0.0])),
            "wall_time_s": round(time.perf_counter() - t0, 2), "parts": part + 1, "agent_config": cfg.to_dict(),
            "last_update_metrics": {k: float(v) for k, v in result.last_update_metrics.items()}}
    task_names = multi_task_names(env)
    if task_names:  # before the replay goes: expert usage per task and gradient conflict between tasks
        diag = multi_task_diagnostics(agent, rdir / "replay", task_names, seed)
        atomic_write_text(rdir / "diagnostics.json", json.dumps(diag, indent=1))
        done["gradient_conflict_mean"] = diag["gradient_conflict"]["mean"]
    atomic_write_text(rdir / "done.json", json.dumps(done, indent=1))
    shutil.rmtree(rdir / "replay", ignore_errors=False)
    shutil.rmtree(rdir / "demos", ignore_errors=True)
    (rdir / RESUME_FILE).unlink(missing_ok=True)
    log(f"[{config} seed {seed}] {result.steps} steps, {result.num_updates} updates, "
        f"{done['wall_time_s']:.0f} s in {part + 1} part(s); final eval return {rows[-1]['eval_return']:.3f}, "
        f"success {rows[-1]['success_rate']:.2f}")
    return rows


def multi_task_names(env: Any) -> tuple[str, ...]:
    """Names of a multi-task env's tasks in the order of the proprio one-hot that ends each observation
    (the sim peg insertion with ``shape: all``: its peg shapes), or ``()`` for a single-task env."""
    task = getattr(env, "task", None)
    if not getattr(task, "multi_task", False):
        return ()
    from robot_envs.tasks.peg_insertion import SHAPES

    return tuple(SHAPES)


def multi_task_diagnostics(agent: Any, replay_dir: Path, task_names: tuple[str, ...], seed: int,
                           episodes: int = 60, batch_size: int = 64) -> dict:
    """MoE diagnostics of a finished multi-task run on its last ``episodes`` training episodes: the
    actor's expert usage per task (MoE actors; rows sum to 1) and the pairwise cosine of the per-task
    actor-loss gradients (every actor; mentor_policy.diagnostics)."""
    from mentor_policy import diagnostics

    data = diagnostics.replay_observations(replay_dir, agent, onehot_dims=len(task_names), max_episodes=episodes)
    data["task"] = [task_names[int(label.removeprefix("task"))] for label in data["task"]]
    gc = diagnostics.gradient_conflict(agent, diagnostics.batches_by_task(data, batch_size, seed=seed))
    out: dict[str, Any] = {"episodes": episodes, "samples": int(len(data["task"])), "batch_size": batch_size,
                           "gradient_conflict": {"tasks": list(gc.tasks), "matrix": gc.matrix.tolist(),
                                                 "mean": gc.mean, "grad_norms": gc.grad_norms.tolist()}}
    if agent.cfg.use_moe:
        usage = diagnostics.expert_usage_by_task(agent, data["image"], data["proprio"], data["task"])
        out["expert_usage_by_task"] = {str(k): v.tolist() for k, v in zip(usage.labels, usage.usage)}
    return out


# --------------------------------------------------------------------------------------------
# The benchmark: all runs, combined CSV, plots, summary
# --------------------------------------------------------------------------------------------
def run_benchmark(bench: LearningBenchmarkConfig, only: Optional[tuple[str, int]] = None,
                  log: Callable[[str], None] = print) -> dict:
    """Run every unfinished (config, seed), then write results.csv, the plots and summary.json."""
    bench.out.mkdir(parents=True, exist_ok=True)
    check_same_settings(bench)
    atomic_write_text(bench.out / "benchmark.json", json.dumps(_settings(bench), indent=1))
    for seed in bench.seeds:  # seed-major: a benchmark stopped early still has every config at the first seeds
        for config in bench.configs:
            if only is not None and (config, seed) != only:
                continue
            if is_finished(bench, config, seed):
                log(f"[{config} seed {seed}] finished earlier, reusing {run_dir(bench, config, seed)}")
                continue
            log(f"[{config} seed {seed}] training {bench.steps} steps on {bench.task}")
            run_one(bench, config, seed, log)
    return summarise(bench, log)


#: settings a set may change between invocations (which runs to do); any other change makes a different benchmark
SET_SELECTION = ("configs", "seeds")


def check_same_settings(bench: LearningBenchmarkConfig) -> None:
    """Refuse to add runs to ``bench.out`` when its ``benchmark.json`` was written with other settings (budget,
    evaluation, preset, task, demos, ...): finished runs are reused, so the set would mix two benchmarks."""
    path = bench.out / "benchmark.json"
    if not path.is_file():
        return
    try:
        before = json.loads(path.read_text())
    except ValueError as exc:
        raise SystemExit(f"{path} is unreadable ({exc}); move it away to start the set afresh") from exc
    now = _settings(bench)
    changed = sorted(k for k in set(before) | set(now) if k not in SET_SELECTION and before.get(k) != now.get(k))
    if changed:
        shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise SystemExit(f"{bench.out} holds a benchmark with other settings ({shown}); use another --out or the "
                         "same settings")


def _settings(bench: LearningBenchmarkConfig) -> dict:
    d = asdict(bench)
    d["out"] = str(bench.out)
    return d


def summarise(bench: LearningBenchmarkConfig, log: Callable[[str], None] = print) -> dict:
    """Combine the finished runs' CSVs, plot both metrics, write and print the summary."""
    rows: list[dict] = []
    for config in bench.configs:
        for seed in bench.seeds:
            if is_finished(bench, config, seed):
                rows += read_results(run_dir(bench, config, seed) / "eval.csv")
    if not rows:
        raise RuntimeError(f"no finished runs under {bench.out / 'runs'}")
    atomic_write_text(bench.out / "results.csv", rows_to_csv(rows))
    summary: dict[str, Any] = {"task": bench.task, "threshold": bench.threshold, "configs": {}}
    for metric in ("success_rate", "eval_return"):
        curves = aggregate(rows, metric, bin_width=bench.eval_every)
        plot_curves(curves, bench.out / f"{metric}.png", metric, band="minmax",
                    title=f"{bench.task}: {metric.replace('_', ' ')} (mean, min..max over seeds)")
        for c in curves:
            entry = summary["configs"].setdefault(c.config, {"n_seeds": c.n_seeds})
            entry[f"final_{metric}"] = float(c.mean[-1]) if c.steps.size else None
            entry["final_step"] = int(c.steps[-1]) if c.steps.size else None
            if metric == "success_rate":
                entry["steps_to_threshold"] = steps_to_threshold(c, bench.threshold)
    summary["statistics"] = seed_statistics(rows, bench)
    diagnostics = multi_task_summary(bench)
    if diagnostics:
        summary["multi_task_diagnostics"] = diagnostics
    atomic_write_text(bench.out / "summary.json", json.dumps(summary, indent=1))
    for config, e in summary["configs"].items():
        reached = e["steps_to_threshold"]
        log(f"{config:>7}: steps to {bench.threshold:.0%} success = {reached if reached is not None else 'not reached'}"
            f" | final (step {e['final_step']}): success {e['final_success_rate']:.2f}, "
            f"return {e['final_eval_return']:.3f} | seeds {e['n_seeds']}")
    for config, st in summary["statistics"]["configs"].items():
        lo, hi = st["final_success_iqm_ci95"]
        log(f"{config:>7}: final success IQM {st['final_success_iqm']:.2f} [95% CI {lo:.2f}, {hi:.2f}] over "
            f"{st['n_seeds']} seeds; per-seed steps to {bench.threshold:.0%}: {st['steps_to_threshold_per_seed']}"
            + (f"; P(mentor > {config}) = {st['p_mentor_better']:.2f} [{st['p_mentor_better_ci95'][0]:.2f}, "
               f"{st['p_mentor_better_ci95'][1]:.2f}]" if "p_mentor_better" in st else ""))
    for config, d in summary.get("multi_task_diagnostics", {}).items():
        log(f"{config:>7}: gradient conflict (mean pairwise cosine between tasks) {d['gradient_conflict_mean']:.3f} "
            f"over {d['n_seeds']} seeds" + (f"; expert specialisation (mean TV distance between tasks' usage) "
                                            f"{d['specialisation_mean']:.3f}" if "specialisation_mean" in d else ""))
    log(f"wrote {bench.out / 'results.csv'}, {bench.out / 'success_rate.png'}, {bench.out / 'eval_return.png'}")
    return summary


def usage_specialisation(usage_by_task: dict[str, list[float]]) -> float:
    """Mean pairwise total-variation distance between the tasks' expert-usage rows: 0 when every task
    uses the experts alike, 1 when no two tasks share an expert. Unlike the rows themselves it can be
    averaged over seeds (expert numbering differs from seed to seed)."""
    rows = [np.asarray(v, dtype=np.float64) for v in usage_by_task.values()]
    pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:]]
    return float(np.mean([0.5 * np.abs(a - b).sum() for a, b in pairs])) if pairs else float("nan")


def multi_task_summary(bench: LearningBenchmarkConfig) -> dict:
    """Per config over the finished runs' ``diagnostics.json``: gradient conflict per seed and its mean;
    MoE configs also the expert usage per task of each seed and its specialisation."""
    out: dict[str, Any] = {}
    for config in bench.configs:
        per_seed = {}
        for seed in bench.seeds:
            path = run_dir(bench, config, seed) / "diagnostics.json"
            if is_finished(bench, config, seed) and path.is_file():
                per_seed[seed] = json.loads(path.read_text())
        if not per_seed:
            continue
        conflict = [d["gradient_conflict"]["mean"] for d in per_seed.values()]
        entry: dict[str, Any] = {"n_seeds": len(per_seed), "gradient_conflict_per_seed": conflict,
                                 "gradient_conflict_mean": float(np.mean(conflict))}
        usage = {str(s): d["expert_usage_by_task"] for s, d in per_seed.items() if "expert_usage_by_task" in d}
        if usage:
            spec = [usage_specialisation(u) for u in usage.values()]
            entry.update(expert_usage_by_task_per_seed=usage, specialisation_per_seed=spec,
                         specialisation_mean=float(np.mean(spec)))
        out[config] = entry
    return out


def seed_statistics(rows: list[dict], bench: LearningBenchmarkConfig) -> dict:
    """Per config over seeds: final success (each seed's last evaluation) as IQM with a 95% bootstrap CI,
    each seed's first step at ``bench.threshold``, and P(mentor > config) on final success (with CI).

    With few seeds the intervals are wide; they are what the data support, not a claim of significance."""
    from benchmarks.stats import iqm, probability_of_improvement, probability_of_improvement_ci, stratified_bootstrap_ci

    by_config: dict[str, dict[int, list[dict]]] = {}
    for r in rows:
        by_config.setdefault(r["config"], {}).setdefault(int(r["seed"]), []).append(r)
    finals: dict[str, np.ndarray] = {}
    out: dict[str, Any] = {"metric": "final success rate (last evaluation of each seed)", "configs": {}}
    for config, seeds in by_config.items():
        last = {s: max(rs, key=lambda r: r["step"]) for s, rs in seeds.items()}
        finals[config] = np.array([last[s]["success_rate"] for s in sorted(last)])
        reach = {}
        for s, rs in sorted(seeds.items()):
            hit = [r["step"] for r in sorted(rs, key=lambda r: r["step"]) if r["success_rate"] >= bench.threshold]
            reach[str(s)] = int(hit[0]) if hit else None
        out["configs"][config] = {"n_seeds": len(seeds), "final_success_per_seed": finals[config].tolist(),
                                  "final_success_iqm": iqm(finals[config]),
                                  "final_success_iqm_ci95": list(stratified_bootstrap_ci(finals[config])),
                                  "steps_to_threshold_per_seed": reach}
    if "mentor" in finals:
        for config, scores in finals.items():
            if config != "mentor":
                out["configs"][config]["p_mentor_better"] = probability_of_improvement(finals["mentor"], scores)
                out["configs"][config]["p_mentor_better_ci95"] = list(
                    probability_of_improvement_ci(finals["mentor"], scores))
    return out


def _parse_list(text: str, kind: Callable[[str], Any]) -> tuple:
    return tuple(kind(x.strip()) for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Train agent configs on one task over seeds; CSV + learning-curve PNG.")
    ap.add_argument("--task", required=True,
                    help="toy | reach | peg_insertion | dmc:<domain>_<task> | metaworld:<task>")
    ap.add_argument("--configs", default="mentor,no_tp,no_moe,drqv2", help=f"comma list of {sorted(CONFIG_OVERLAYS)}")
    ap.add_argument("--seeds", default="0,1,2", help="comma list of seeds")
    ap.add_argument("--steps", type=int, default=20_000, help="agent steps of training per run")
    ap.add_argument("--eval-every", type=int, default=2_000, help="agent steps between evaluations")
    ap.add_argument("--eval-episodes", type=int, default=5, help="deterministic episodes per evaluation")
    ap.add_argument("--out", required=True, help="output directory, e.g. benchmarks/results/<name>")
    ap.add_argument("--preset", default="tiny", help="base agent preset: tiny (CPU) or paper (GPU), or a YAML path")
    ap.add_argument("--agent-overrides", nargs="*", default=[], metavar="K=V",
                    help="AgentConfig fields, e.g. num_seed_frames=1000 lr=3e-4 (values parsed as YAML)")
    ap.add_argument("--env-overrides", nargs="*", default=[], metavar="K=V",
                    help="env config fields, e.g. episode_length=40 (values parsed as YAML)")
    ap.add_argument("--env-runtime", nargs="*", default=[], metavar="K=V",
                    help="sim tasks: robot_envs EnvConfig fields, e.g. camera_timeout_s=10 move_timeout_s=30")
    ap.add_argument("--backend", default="mujoco", choices=SIM_BACKENDS,
                    help="sim tasks: mujoco (directly stepped, fast) or sim (franky-sim, the ROS graph's backend)")
    ap.add_argument("--sim", nargs="*", default=[], metavar="K=V",
                    help="--backend sim: SimBackendConfig fields, e.g. realtime_factor=1 "
                         "(0 = as fast as the CPU allows)")
    ap.add_argument("--task-overlay", default="auto",
                    help="agent overlay for the task: auto (configs/tasks/<suite or task>.yaml on the paper preset), "
                         "none, or a name")
    ap.add_argument("--threshold", type=float, default=0.8, help="report steps to this success rate")
    ap.add_argument("--device", default="auto", help="torch device: auto | cpu | cuda | cuda:1")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch CPU threads (0 = torch's default); 1 is often faster on a shared, busy CPU")
    ap.add_argument("--replay-capacity", type=int, default=100_000, help="transitions kept per run")
    ap.add_argument("--demo-dir", default="", help="a demo store (python -m robot_envs.experts) for every run's "
                    "demonstration buffer; a share --demo-ratio of each batch comes from it")
    ap.add_argument("--demo-ratio", type=float, default=0.5, help="with --demo-dir: share of each batch from demos")
    ap.add_argument("--checkpoint-every", type=int, default=1_000,
                    help="agent steps between mid-run checkpoints; a killed run resumes from the last (0 = none)")
    ap.add_argument("--only", default=None, metavar="CONFIG:SEED",
                    help="run just this (config, seed), e.g. to spread runs over processes; then summarise")
    ap.add_argument("--summarise-only", action="store_true", help="only rebuild results.csv, plots and summary")
    return ap


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    bench = LearningBenchmarkConfig(
        task=args.task, out=Path(args.out), configs=_parse_list(args.configs, str), seeds=_parse_list(args.seeds, int),
        steps=args.steps, eval_every=args.eval_every, eval_episodes=args.eval_episodes, preset=args.preset,
        agent_overrides=parse_overrides(args.agent_overrides), env_overrides=parse_overrides(args.env_overrides),
        runtime_overrides=parse_overrides(args.env_runtime), sim_overrides=parse_overrides(args.sim),
        task_overlay=args.task_overlay, threshold=args.threshold, device=args.device,
        replay_capacity=args.replay_capacity, backend=args.backend, checkpoint_every=args.checkpoint_every,
        demo_dir=args.demo_dir, demo_ratio=args.demo_ratio)
    if args.summarise_only:
        summarise(bench)
        return 0
    only = None
    if args.only:
        config, _, seed = args.only.partition(":")
        if config not in bench.configs or not seed.strip().isdigit() or int(seed) not in bench.seeds:
            raise SystemExit(f"--only must be CONFIG:SEED from --configs/--seeds, got {args.only!r}")
        only = (config, int(seed))
    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.torch_threads < 0:
        raise SystemExit(f"--torch-threads must be >= 0, got {args.torch_threads}")
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    run_benchmark(bench, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
