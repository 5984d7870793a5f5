"""Scripted experts for the sim tasks (privileged object poses), and a recorder of their demonstrations.

An expert maps the env's state to a normalised action ``(A,)`` in [-1, 1] with the task's action scale
(``translation_scale`` metres per unit): reach moves the TCP to the target; push goes behind the cube on the
cube -> goal line, down, and pushes; peg insertion aligns the active peg over its hole, then descends. They
read ``env.world.object_poses`` and ``env.last_state`` (sim only), so demonstrations need no human: tests
and benchmarks use them where a real robot has an operator with teleop.

``python -m robot_envs.experts --task reach --episodes 10 --out demos/reach`` records that many
demonstrations into a demo store: a :class:`mentor_policy.replay.ReplayBuffer` directory (the learner's
``demo_dirs`` / ``mentor-run --demo-dir``) whose episodes mark every step an intervention, written
atomically one file per episode (a killed recorder loses at most the episode in progress).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

Expert = Callable[[Any], np.ndarray]  # env -> action


def _toward(target: np.ndarray, ee: np.ndarray, scale: float, gain: float = 1.0) -> np.ndarray:
    return np.clip(gain * (np.asarray(target, float) - ee) / scale, -1.0, 1.0)


def reach_expert(env: Any) -> np.ndarray:
    target = env.world.object_poses(["target"])["target"][:3]
    return _toward(target, env.last_state.ee_pose[:3], env.task.cfg.action.translation_scale)


def peg_expert(env: Any) -> np.ndarray:
    cfg = env.task.cfg
    hole = env.world.object_poses([f"hole_{env.task.active_shape}"])[f"hole_{env.task.active_shape}"][:3]
    ee = env.last_state.ee_pose[:3]
    aligned = np.linalg.norm(hole[:2] - ee[:2]) < 0.003
    above = hole[2] + cfg.hole_depth + cfg.tip_offset + 0.01  # the tip 1 cm over the block
    z = ee[2] - 0.02 if aligned else max(ee[2], above)  # align above the hole, then descend
    return _toward(np.r_[hole[:2], z], ee, cfg.action.translation_scale)


def push_expert() -> Expert:
    """A fresh push expert (it keeps a phase): behind the cube, down, push at half speed; re-approach when
    the cube slipped off the pushing line."""
    phase = [0]

    def act(env: Any) -> np.ndarray:
        poses = env.world.object_poses(["cube", "goal"])
        cube, goal = poses["cube"][:3], poses["goal"][:3]
        ee = env.last_state.ee_pose[:3]
        d = (goal[:2] - cube[:2]) / max(np.linalg.norm(goal[:2] - cube[:2]), 1e-9)
        pre = cube[:2] - d * 0.055
        rel = cube[:2] - ee[:2]
        behind, lateral = float(rel @ d), abs(float(rel[0] * d[1] - rel[1] * d[0]))
        if phase[0] == 0 and np.linalg.norm(ee[:2] - pre) < 0.01:
            phase[0] = 1
        if phase[0] == 1 and ee[2] < 0.035:
            phase[0] = 2
        if phase[0] == 2 and (lateral > 0.015 or behind < 0.02):
            phase[0] = 0
        target = {0: np.r_[pre, 0.08], 1: np.r_[pre, 0.025], 2: np.r_[cube[:2] + d * 0.03, 0.025]}[phase[0]]
        return _toward(target, ee, env.task.cfg.action.translation_scale, 0.5 if phase[0] == 2 else 1.0)
    return act


def new_expert(task_name: str) -> Expert:
    """An expert for one episode of a sim task (``reach``, ``push``, ``peg_insertion[_<shape>]``)."""
    if task_name == "reach":
        return reach_expert
    if task_name == "push":
        return push_expert()
    if task_name.startswith("peg_insertion") and not task_name.endswith("_real"):
        return peg_expert
    raise ValueError(f"no scripted expert for task {task_name!r} (sim tasks: reach, push, peg_insertion[_<shape>])")


def record_demos(task: str, episodes: int, out: str, seed: int = 0, backend: str = "mujoco",
                 log: Callable[[str], None] = print, **task_overrides: Any) -> dict:
    """Record ``episodes`` expert episodes of ``task`` into the demo store ``out``; returns counts."""
    import robot_envs.env as robot_env
    from mentor_policy.replay import ReplayBuffer, ReplayConfig
    from mentor_policy.step_record import EpisodeTally, make_step_record, records_to_episode

    env = robot_env.make(task, backend=backend, env_config=robot_env.EnvConfig(seed=seed), **task_overrides)
    existing = sum(int(p.name.split("_")[2].split(".")[0]) for p in Path(out).glob("ep_*_*.npz"))
    capacity = existing + episodes * (env.task.episode_length + 1) + 1  # the store never evicts a demonstration
    store = ReplayBuffer(out, ReplayConfig(capacity=capacity, seed=seed, delete_evicted=False), env.spec)
    successes, start = 0, store.episodes_added
    try:
        for i in range(episodes):
            obs, expert = env.reset(), new_expert(task)
            zero = np.zeros(env.spec.action_dim, np.float32)
            records = [make_step_record(obs["image"], obs["proprio"], zero, 0.0, first=True, last=False,
                                        terminal=False, intervention=True)]
            tally, done = EpisodeTally(), False
            while not done:
                action = expert(env).astype(np.float32)
                obs, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                records.append(make_step_record(obs["image"], obs["proprio"], action, reward, first=False, last=done,
                                                terminal=terminated, intervention=True, success=info["success"]))
                tally.add(records[-1])
            store.add_episode(records_to_episode(records), key=f"demo-seed{seed}-{start + i}")
            successes += tally.success
            log(f"demo {i + 1}/{episodes}: {tally.steps} steps, return {tally.episode_return:.2f}, "
                f"success {tally.success}")
    finally:
        env.close()
    return {"episodes": episodes, "successes": successes, "transitions": store.num_transitions, "out": str(out)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m robot_envs.experts",
                                 description="Record scripted-expert demonstrations of a sim task into a demo store.")
    ap.add_argument("--task", required=True, help="reach | push | peg_insertion[_square|_round|_rect]")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--out", required=True, help="demo store directory (the learner's demo_dirs)")
    ap.add_argument("--seed", type=int, default=0, help="env seed (reset poses, scenes)")
    ap.add_argument("--backend", default="mujoco", choices=("mujoco", "sim"))
    args = ap.parse_args(argv)
    if args.episodes < 1:
        ap.error("--episodes must be >= 1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    res = record_demos(args.task, args.episodes, args.out, args.seed, args.backend)
    print(f"recorded {res['episodes']} demonstrations ({res['successes']} successful, {res['transitions']} "
          f"transitions in the store) -> {res['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
