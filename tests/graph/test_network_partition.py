"""Actor and learner on two hosts (network namespaces joined by a link, real DDS over UDP between them):
the link is cut for 20 s mid-episode, then restored with 20 ms delay and 1% loss each way (tc netem on a
veth pair; on a kernel without the netem qdisc, TAP devices joined by a user-space forwarder that delays and
drops frames: benchmarks/link_emulator.py). The robot keeps
acting on its last weights meanwhile, every record it produced reaches the learner's disk exactly once,
training goes on and new weights arrive again."""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("franky_sim")
from _graph_util import (  # noqa: E402
    AGENT_OVERRIDES,
    episode_phase,
    ledger_acked,
    stored_rows,
    tails,
    wait_for,
    write_run_config,
)

from mentor.graph import GraphArgs, build_graph  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402
from mentor.transport import Outbox  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks import veth  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow,
              pytest.mark.skipif(veth.impairment_unavailable() is not None,
                                 reason=f"two test hosts with a lossy link: {veth.impairment_unavailable()}")]


def _versions(policy_log: str) -> list[int]:
    return [int(v) for v in re.findall(r"acting with weights version (\d+)", policy_log)]


def test_a_cut_link_loses_nothing_and_training_resumes(tmp_path):
    task_yaml, params = write_run_config(tmp_path)
    run = tmp_path / "run"
    base = dict(mode="train", task="reach", task_config=str(task_yaml), use_sim=True, run_dir=str(run),
                agent_config="tiny", agent_overrides=AGENT_OVERRIDES, config_file=str(params), eval_every_episodes=0)
    robot_nodes = build_graph(GraphArgs(**base, side="robot"))
    learner_nodes = build_graph(GraphArgs(**base, side="learner"))
    assert {n.executable for n in learner_nodes} == {"learner_node"}
    assert "learner_node" not in {n.executable for n in robot_nodes}
    env = node_env(domain_id=90 + __import__("os").getpid() % 40, localhost_only=False)  # DDS on every interface
    with veth.impairable_hosts() as net:
        print(f"link between the hosts: {net.kind}")
        robot = GraphProcesses(robot_nodes, run, env, prefix=net.prefix("a"))
        learner = GraphProcesses(learner_nodes, tmp_path / "learner_host", env, prefix=net.prefix("b"))
        outbox = lambda: Outbox(run / "actor" / "outbox").next_seq - 1  # noqa: E731 - last record produced
        try:
            robot.start_all()
            learner.start_all()
            wait_for(robot, "weights from the other host", lambda: _versions(robot.read_log("policy")), 300)
            wait_for(robot, "a running episode", lambda: episode_phase(run) == "RUNNING", 120)
            time.sleep(1.0)
            # -- the link goes down for 20 s, mid-episode ---------------------------------------------
            acked_before, produced_before = ledger_acked(run / "learner").get("robot", -1), outbox()
            versions_before = _versions(robot.read_log("policy"))
            net.cut()
            time.sleep(20.0)
            produced_during = outbox() - produced_before
            acked_during = ledger_acked(run / "learner").get("robot", -1)
            versions_during = _versions(robot.read_log("policy"))
            assert not robot.exited() and not learner.exited(), tails(robot) + tails(learner)
            # -- back, impaired ------------------------------------------------------------------------
            net.restore()
            net.impair(delay_ms=20, loss_pct=1)
            target = outbox()
            wait_for(robot, "every record of the cut acknowledged",
                     lambda: ledger_acked(run / "learner").get("robot", -1) >= target, 240)
            wait_for(robot, "new weights after the cut",
                     lambda: max(_versions(robot.read_log("policy"))) > max(versions_during), 240)
            updates = [int(u) for u in re.findall(r"updates (\d+)", learner.read_log("learner"))]
        except BaseException:
            print(tails(robot, 3000) + tails(learner, 3000))
            raise
        finally:
            robot.stop_all()
            learner.stop_all()
    assert produced_during >= 50, produced_during  # the robot kept acting (10 Hz) with nobody to talk to
    assert acked_during <= produced_before + 5  # and nothing got through the cut (a few were in flight)
    assert max(versions_during) == max(versions_before)  # it acted on its last weights
    assert updates and max(updates) > 0  # training went on
    last = ledger_acked(run / "learner")["robot"]
    rows = stored_rows(run / "learner")
    assert rows["replay"] + rows["journal"] + rows["discarded"] == last + 1, rows  # each acked record once
    assert acked_before < last
