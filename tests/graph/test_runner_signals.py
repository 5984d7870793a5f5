"""`mentor-run` stops every node it started when it is terminated (SIGTERM from systemd, `timeout`,
`docker stop`), so no node outlives the runner and keeps a robot or a port busy; and it refuses to
start a second graph of the same node names in the same ROS domain."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.sim
@pytest.mark.ros
def test_sigterm_stops_the_whole_graph(tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "ros2_ws" / "src" / "mentor")]))
    runner = subprocess.Popen(
        [sys.executable, "-m", "mentor.runner", "train", "--use-sim", "--task", "reach",
         "--run-dir", str(run_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        logs = run_dir / "logs"
        # every node has written its start-up line: the graph is fully up
        while time.monotonic() < deadline:
            up = [p for p in logs.glob("*.log") if " up" in p.read_text(errors="replace")] if logs.is_dir() else []
            if len(up) >= 3 and _processes_mentioning(str(run_dir / "params")):
                break
            assert runner.poll() is None, runner.stdout.read()
            time.sleep(1.0)
        node_pids = _processes_mentioning(str(run_dir / "params"))
        assert len(node_pids) >= 5, f"expected the five sim training nodes, found {node_pids}"
        # a second graph of the same names in the same ROS domain is refused before it starts a node
        second = subprocess.run(
            [sys.executable, "-m", "mentor.runner", "train", "--use-sim", "--task", "reach",
             "--run-dir", str(tmp_path / "second")], env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 4, second.stdout + second.stderr
        assert "another MENTOR graph is up" in second.stderr and "/learner" in second.stderr, second.stderr
        assert _processes_mentioning(str(tmp_path / "second" / "params")) == []
        runner.send_signal(signal.SIGTERM)
        output, _ = runner.communicate(timeout=90)
        assert "stopping the graph" in output, output
        assert _processes_mentioning(str(run_dir / "params")) == [], "nodes outlived the runner"
    finally:
        if runner.poll() is None:
            runner.kill()
        for pid in _processes_mentioning(str(run_dir / "params")):
            os.kill(pid, signal.SIGKILL)
