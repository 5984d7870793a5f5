"""Transition ingest rate of the learner node, and proof that nothing is lost.

Plays a policy node at full speed: 84x84 RGB step records (episodes of ``--episode-length``) are
appended to a real fsynced outbox and published on ``transitions`` (reliable), resent when not
acknowledged within 1 s, with at most ``--window`` unacknowledged records in flight. A real
learner node (own process) journals (fsync), acknowledges and finalises episodes into its replay.
Prints transitions/s acknowledged and checks that every sequence number is on the learner's disk
exactly once (replay rows + journal rows + discarded rows == records sent).

    .venv/bin/python benchmarks/transition_ingest.py [--minutes 0.5] [--train]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "ros2_ws" / "src" / "mentor"), str(ROOT / "tests" / "graph")]
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))

import rclpy  # noqa: E402
from std_msgs.msg import String, UInt8MultiArray  # noqa: E402

from mentor import qos, wire  # noqa: E402
from mentor.graph import NodeSpec  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402
from mentor.transport import IngestLedger, Outbox  # noqa: E402


def make_record(rng, t: int, length: int) -> dict:
    return {"image": rng.integers(0, 256, size=(3, 84, 84), dtype=np.uint8),
            "proprio": rng.standard_normal(4).astype(np.float32), "action": rng.uniform(-1, 1, 3).astype(np.float32),
            "reward": float(rng.standard_normal()), "discount": 1.0, "is_first": t == 0, "is_last": t == length,
            "intervention": False}


def stored_rows(learner_dir: Path) -> int:
    from mentor_policy.journal import EpisodeJournal
    replay = sum(int(np.load(p)["reward"].shape[0]) for p in (learner_dir / "replay").glob("ep_*.npz"))
    journal = EpisodeJournal(learner_dir / "journal")
    rows = replay + sum(len(journal.read(k)) for k in journal.keys())
    discarded = learner_dir / "discarded_rows.txt"
    if discarded.exists():
        rows += sum(int(line.split()[1]) for line in discarded.read_text().splitlines())
    return rows


def _publish(pub, payload: bytes, counts: dict) -> bool:
    """Publish one record; False when DDS refuses it (reliable history full: the learner is behind)."""
    try:
        pub.publish(wire.bytes_to_msg(payload))
    except rclpy.impl.implementation_singleton.rclpy_implementation.RCLError:
        counts["refused"] += 1
        return False
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=0.5)
    p.add_argument("--episode-length", type=int, default=50)
    p.add_argument("--window", type=int, default=200, help="max unacknowledged records in flight")
    p.add_argument("--train", action="store_true", help="let the learner update (tiny agent) while ingesting")
    p.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mentor_bench_ingest_"))
    learner_dir = tmp / "learner"
    spec = NodeSpec("learner", "learner_node", "", {
        "task": "reach", "cameras": ["front"], "agent_config": "tiny", "learner_dir": str(learner_dir),
        "num_seed_frames": 200 if a.train else 10**9, "replay_capacity": 200_000, "log_every_s": 10.0,
        "max_updates_per_s": 4.0})
    graph = GraphProcesses([spec], tmp, node_env(), echo=("learner",) if a.train else ())
    rclpy.init()
    node = rclpy.create_node("bench_ingest")
    box = Outbox(tmp / "outbox")
    lock = threading.Lock()
    counts = {"refused": 0}

    def on_ack(msg: String) -> None:
        acked = wire.msg_to_json(msg).get("bench")
        if isinstance(acked, int):
            with lock:
                box.ack(acked)

    node.create_subscription(String, "learner/ack", on_ack, qos.LATCHED)
    pub = node.create_publisher(UInt8MultiArray, "transitions", qos.TRANSITIONS)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    from mentor_policy.step_record import encode_step_record
    rng = np.random.default_rng(0)
    graph.start("learner")
    try:
        deadline = time.monotonic() + 120
        while "learner up" not in graph.read_log("learner"):
            if time.monotonic() > deadline or graph.exited():
                raise RuntimeError(f"learner did not start: {graph.read_log('learner')[-2000:]}")
            time.sleep(0.2)
        time.sleep(1.0)
        t_start = time.monotonic()
        end = t_start + 60 * a.minutes
        episode, t = 0, 0
        while time.monotonic() < end:
            with lock:
                in_flight = len(box)
                due = box.due(1.0, 50)
            for seq, payload in due:
                if not _publish(pub, payload, counts):
                    break
                with lock:
                    box.mark_sent(seq)
            if in_flight >= a.window:
                time.sleep(0.002)
                continue
            seq = box.next_seq
            payload = encode_step_record(make_record(rng, t, a.episode_length),
                                         {"source": "bench", "seq": seq, "episode_id": episode, "t": t})
            with lock:
                box.append(seq, payload)
                box.mark_sent(seq)
            _publish(pub, payload, counts)  # refused: stays in the outbox, resent after 1 s
            t += 1
            if t > a.episode_length:
                episode, t = episode + 1, 0
        produced = box.next_seq
        while True:  # drain: resend until everything is acknowledged
            with lock:
                left = len(box)
                due = box.due(1.0, 100)
            if not left:
                break
            for seq, payload in due:
                if not _publish(pub, payload, counts):
                    break
                with lock:
                    box.mark_sent(seq)
            if time.monotonic() - end > 120:
                raise RuntimeError(f"{left} records never acknowledged")
            time.sleep(0.01)
        elapsed = time.monotonic() - t_start
    finally:
        graph.stop_all()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    led = IngestLedger(learner_dir / "ingest.ledger")
    led.close()
    rows = stored_rows(learner_dir)
    log = graph.read_log("learner")
    print(f"transition ingest: {produced} records (84x84 RGB, {len(payload) / 1e3:.1f} kB each) in {elapsed:.1f} s "
          f"-> {produced / elapsed:.1f} transitions/s acknowledged (journal fsync per record"
          f"{', learner training' if a.train else ''})")
    lost = produced - rows
    print(f"  acked seq {led.acked.get('bench')} (expected {produced - 1}); rows on the learner's disk {rows}; "
          f"lost {lost}; gap warnings {log.count('transition gap')}; publishes refused by DDS {counts['refused']} "
          f"(resent from the outbox)")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if lost == 0 and led.acked.get("bench") == produced - 1 else 1


if __name__ == "__main__":
    sys.exit(main())
