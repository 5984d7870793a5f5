"""Helpers of the graph tests: start the real graph (subprocesses, rclpy, DDS, franky-sim), wait, inspect disk."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import yaml

from mentor.graph import GraphArgs, build_graph
from mentor.runner import GraphProcesses, node_env

# Small and fast: short episodes, early updates, frequent weights/checkpoints, perturbation every 5 updates.
AGENT_OVERRIDES = ("{num_seed_frames: 30, num_expl_steps: 30, batch_size: 16, perturb_interval: 5, topk: 2, "
                   "hidden_dim: 32, feature_dim: 16, encoder_channels: 8, num_experts: 4, moe_top_k: 2, "
                   "expert_hidden_dim: 16, gate_hidden_dim: 16, frame_stack: 2}")
# A small workspace box around the reset pose (0.45, 0, 0.25; +-5 mm noise) so a teleop push reaches its
# faces within a second or two even on a loaded machine (franky-sim moves ~2 cm/s under streamed commands).
BOX_MIN, BOX_MAX = (0.30, -0.15, 0.10), (0.47, 0.02, 0.27)
LEARNER_PARAMS = {"utd": 1.0, "max_updates_per_s": 4.0, "publish_weights_every": 5, "checkpoint_every": 10,
                  "log_every_s": 2.0, "num_seed_frames": 30, "replay_capacity": 5000, "nice": 5}


def write_run_config(tmp: Path, episode_length: int = 12, policy: dict | None = None,
                     sim_world: dict | None = None) -> tuple[Path, Path]:
    """(task YAML, parameter YAML) for a quick reach run; ``policy`` / ``sim_world``: extra node parameters."""
    task_yaml = tmp / "task.yaml"
    task_yaml.write_text(yaml.safe_dump({"episode_length": episode_length, "reset_noise_xy": 0.005,
                                         "safety": {"workspace_min": list(BOX_MIN), "workspace_max": list(BOX_MAX)}}))
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump({
        "robot": {"ros__parameters": {"franky.move_to_dynamics_factor": 0.4, "watchdog_timeout_s": 0.5}},
        "learner": {"ros__parameters": LEARNER_PARAMS},
        # frame_timeout_s: tolerate a CPU-starved shared machine
        "policy": {"ros__parameters": {"frame_timeout_s": 3.0, **(policy or {})}},
        "sim_world": {"ros__parameters": {"pose_hz": 10.0, **(sim_world or {})}},
    }))
    return task_yaml, params


def may_use_fifo() -> bool:
    """This process (and the nodes it starts) may run threads at SCHED_FIFO: root or an rtprio limit."""
    import resource

    return hasattr(os, "sched_setscheduler") and (
        os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] > 0)


def fifo_threads(pid: int) -> tuple[int, int]:
    """(threads of process ``pid`` at SCHED_FIFO, all its threads), from /proc."""
    fifo = total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            tid = int(task.name)
            total += 1
            fifo += os.sched_getscheduler(tid) == os.SCHED_FIFO
        except (OSError, ValueError):  # the thread ended meanwhile
            continue
    return fifo, total


def start_graph(tmp: Path, names: tuple[str, ...] | None = None, **overrides) -> GraphProcesses:
    task_yaml, params = write_run_config(tmp)
    args = GraphArgs(mode="train", task="reach", task_config=str(task_yaml), use_sim=True, robot_ip="auto",
                     run_dir=str(tmp / "run"), agent_config="tiny", agent_overrides=AGENT_OVERRIDES,
                     control_hz=10.0, config_file=str(params), **overrides)
    nodes = [n for n in build_graph(args) if names is None or n.name in names]
    graph = GraphProcesses(nodes, tmp / "run", node_env())
    graph.start_all()
    return graph


def wait_for(graph: GraphProcesses, what: str, cond, timeout_s: float, allowed_exits: tuple[str, ...] = ()):
    """Poll ``cond()`` until truthy; fail early (with logs) when a node died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        dead = {n: c for n, c in graph.exited().items() if n not in allowed_exits}
        if dead:
            raise AssertionError(f"while waiting for {what}: nodes exited {dead}\n" + tails(graph))
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n" + tails(graph))


def tails(graph: GraphProcesses, n: int = 2500) -> str:
    return "\n".join(f"===== {name}\n{graph.read_log(name)[-n:]}" for name in graph.nodes)


def episode_state(run: Path) -> dict:
    """The episode node's persisted state (``episode_state.json``): ``{"episode_id", "phase"}`` ({} if absent)."""
    import json
    try:
        return json.loads((run / "episode_state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def episode_phase(run: Path) -> str | None:
    return episode_state(run).get("phase")


def episodes_csv_rows(run: Path) -> int:
    path = run / "episodes.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def stored_rows(learner_dir: Path) -> dict[str, int]:
    """Step records durably on the learner's disk: replay episode rows, journal records, discarded rows."""
    from mentor_policy.journal import EpisodeJournal
    replay = sum(int(np.load(p)["reward"].shape[0]) for p in sorted((learner_dir / "replay").glob("ep_*.npz")))
    journal = EpisodeJournal(learner_dir / "journal")
    in_journal = sum(len(journal.read(k)) for k in journal.keys())
    discarded_file = learner_dir / "discarded_rows.txt"
    discarded = sum(int(line.split()[1]) for line in discarded_file.read_text().splitlines()) \
        if discarded_file.exists() else 0
    return {"replay": replay, "journal": in_journal, "discarded": discarded}


def ledger_acked(learner_dir: Path) -> dict[str, int]:
    from mentor.transport import IngestLedger
    led = IngestLedger(learner_dir / "ingest.ledger")
    led.close()
    return dict(led.acked)
