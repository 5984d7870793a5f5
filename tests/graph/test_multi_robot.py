"""Two simulated robots feed one learner (real rclpy + DDS + two franky-sim worlds): each robot's nodes run
in its own namespace (r0, r1), the learner subscribes to both transition topics and both policies act with
its weights. After a drain, every record each robot produced is on the learner's disk exactly once, under
its own source, and the learner acknowledges each source separately."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("franky_sim")
from _graph_util import AGENT_OVERRIDES, ledger_acked, tails, wait_for, write_run_config  # noqa: E402

from mentor.graph import GraphArgs, build_graph  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402
from mentor.transport import Outbox  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]
SOURCES = ("r0", "r1")


def _rows_by_source(learner: Path) -> dict[str, int]:
    """Step rows per source on the learner's disk: finished episodes in the replay + open ones in the journal."""
    from mentor_policy.journal import EpisodeJournal
    rows = dict.fromkeys(SOURCES, 0)
    for path in (learner / "replay").glob("ep_*.npz"):
        source = path.name.split(".")[1].rsplit("-ep", 1)[0]
        rows[source] += int(np.load(path)["reward"].shape[0])
    journal = EpisodeJournal(learner / "journal")
    for key in journal.keys():
        rows[key.rsplit("-ep", 1)[0]] += len(journal.read(key))
    return rows


def _episodes_of(run: Path, robot: str) -> int:
    path = run / robot / "episodes.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def test_two_robots_feed_one_learner_exactly_once(tmp_path):
    task_yaml, params = write_run_config(tmp_path)
    run = tmp_path / "run"
    args = GraphArgs(mode="train", task="reach", task_config=str(task_yaml), use_sim=True, run_dir=str(run),
                     agent_config="tiny", agent_overrides=AGENT_OVERRIDES, config_file=str(params), robots=2,
                     eval_every_episodes=0)
    nodes = build_graph(args)
    learner_spec = next(n for n in nodes if n.executable == "learner_node")
    assert learner_spec.parameters["transition_topics"] == ["r0/transitions", "r1/transitions"]
    assert {n.namespace for n in nodes if n.executable == "policy_node"} == set(SOURCES)
    graph = GraphProcesses(nodes, run, node_env())
    graph.start_all()
    try:
        wait_for(graph, "two episodes of each robot", lambda: all(_episodes_of(run, r) >= 2 for r in SOURCES), 400)
        wait_for(graph, "both policies acting with the learner's weights", lambda: all(
            "acting with weights version" in graph.read_log(f"{r}_policy") for r in SOURCES), 240)
        for robot in SOURCES:  # drain: the episodes end, the policies resend what is not acknowledged
            graph.kill(f"{robot}_episode", signal.SIGINT)
        time.sleep(3.0)

        def drained():
            last = {r: Outbox(run / r / "actor" / "outbox").next_seq - 1 for r in SOURCES}
            if ledger_acked(run / "learner") != last:
                return None
            time.sleep(2.0)
            return last if {r: Outbox(run / r / "actor" / "outbox").next_seq - 1 for r in SOURCES} == last else None
        last = wait_for(graph, "every record of both robots acknowledged", drained, 120,
                        allowed_exits=tuple(f"{r}_episode" for r in SOURCES))
    except BaseException:
        print(tails(graph, 4000))
        raise
    finally:
        graph.stop_all()
    assert all(last[r] > 20 for r in SOURCES), last  # both robots acted
    assert _rows_by_source(run / "learner") == {r: last[r] + 1 for r in SOURCES}  # each record once, own source
    # both arms moved: their episodes were written by their own episode nodes
    assert all(_episodes_of(run, r) >= 2 for r in SOURCES)
