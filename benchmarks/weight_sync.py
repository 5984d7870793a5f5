"""Weight sync latency: learner publishes weights -> the policy node acts with them.

Starts a real policy node (its own process, rclpy/DDS) and plays the learner: publishes versioned
policy states of the given agent configs on ``learner/weights`` (reliable, transient-local) and
times until the policy node reports the version on ``policy/weights_version`` (published right
after the swap, which happens at the end of a control tick, so the figure includes up to one control
period). No camera runs here, so the policy ticks on its timer (``tick_source=timer``): with frames,
the frame-triggered ticks swap at the same point. Also prints how long the swap itself took inside
the tick (``load_state_dict``; the policy node logs it).

    .venv/bin/python benchmarks/weight_sync.py [--configs tiny,paper] [--repeats 10] [--control-hz 10]

Across two hosts (root): ``--veth`` runs the policy node in one network namespace and this publisher in
another, joined by a veth pair (benchmarks/veth.py), DDS over UDP on it; ``--netem 20,1`` adds 20 ms delay
and 1% loss in each direction (tc netem; on a kernel without the netem qdisc the two hosts are joined by an
emulated link instead, TAP devices and a user-space forwarder that delays and drops frames, and the
printed link says so), ``--rate 20mbit`` a token-bucket bandwidth limit on the veth.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "ros2_ws" / "src" / "mentor")]
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))

import rclpy  # noqa: E402
from std_msgs.msg import Int64, UInt8MultiArray  # noqa: E402

from mentor import qos, wire  # noqa: E402
from mentor.graph import NodeSpec, node_dds_env  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402
from mentor.weights import encode_weights  # noqa: E402


def policy_state(agent_config: str, task: str):
    from mentor_policy.config import load_agent_config
    from mentor_policy.policy import ActorPolicy
    from robot_envs.tasks import get_task
    cfg = load_agent_config(agent_config)
    return ActorPolicy(get_task(task).env_spec(1), cfg, device="cpu").policy_state()


def swap_times_ms(policy_log: str) -> list[float]:
    """The swap durations the policy node logged ("swapped in X ms"): the time a tick spends loading weights."""
    return [float(m) for m in re.findall(r"swapped in ([0-9.]+) ms", policy_log)]


def measure(agent_config: str, repeats: int, control_hz: float, task: str, prefix: tuple[str, ...] = (),
            network: bool = False) -> tuple[list[float], int, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="mentor_bench_weights_"))
    spec = NodeSpec("policy", "policy_node", "", {
        "mode": "train", "task": task, "cameras": ["front"], "control_hz": control_hz, "agent_config": agent_config,
        "outbox_dir": str(tmp / "outbox"), "source": "bench", "tick_source": "timer"})
    graph = GraphProcesses([spec], tmp, node_env(localhost_only=not network), prefix=prefix)
    node = rclpy.create_node(f"bench_weights_{agent_config}")
    seen: dict[int, float] = {}
    node.create_subscription(Int64, "policy/weights_version", lambda m: seen.setdefault(m.data, time.monotonic()),
                             qos.LATCHED)
    pub = node.create_publisher(UInt8MultiArray, "learner/weights", qos.LATCHED)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    state = policy_state(agent_config, task)
    graph.start("policy")
    latencies, size, swaps = [], 0, []
    try:
        deadline = time.monotonic() + 120
        while 0 not in seen:  # the node is up and subscribed
            if time.monotonic() > deadline or graph.exited():
                raise RuntimeError(f"policy node did not come up: {graph.read_log('policy')[-2000:]}")
            time.sleep(0.1)
        time.sleep(1.0)
        for version in range(1, repeats + 1):
            payload = encode_weights(version, 1000 * version, state)
            size = len(payload)
            t0 = time.monotonic()
            pub.publish(wire.bytes_to_msg(payload))
            while version not in seen:
                if time.monotonic() - t0 > 30:
                    raise RuntimeError(f"version {version} never reached the policy: "
                                       f"{graph.read_log('policy')[-2000:]}")
                time.sleep(0.001)
            latencies.append(seen[version] - t0)
            time.sleep(0.2)
        swaps = swap_times_ms(graph.read_log("policy"))
    finally:
        graph.stop_all()
        executor.shutdown()
        node.destroy_node()
        shutil.rmtree(tmp, ignore_errors=True)
    return latencies, size, swaps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="tiny,paper")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--control-hz", type=float, default=10.0)
    p.add_argument("--task", default="reach")
    p.add_argument("--veth", action="store_true", help="policy node and publisher on two hosts (network namespaces)")
    p.add_argument("--netem", default="", metavar="DELAY_MS,LOSS_PCT", help="with --veth: tc netem on the link")
    p.add_argument("--rate", default="", help="with --veth: a tc tbf bandwidth limit, e.g. 20mbit")
    p.add_argument("--policy-prefix", default="", help=argparse.SUPPRESS)  # internal: the run inside the namespace
    a = p.parse_args()
    if a.veth:
        return across_veth(a)
    prefix = tuple(a.policy_prefix.split()) if a.policy_prefix else ()
    if prefix:  # inside a namespace: discover over the veth
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
        os.environ.update(node_dds_env(localhost_only=False))  # the publisher talks as a networked graph does
    rclpy.init()
    try:
        for cfg in a.configs.split(","):
            lat, size, swaps = measure(cfg, a.repeats, a.control_hz, a.task, prefix, network=bool(prefix))
            ms = np.array(lat) * 1e3
            print(f"weights {cfg}: payload {size / 1e6:.2f} MB, publish -> acting ({a.repeats} swaps, control "
                  f"{a.control_hz:.0f} Hz): p50 {np.percentile(ms, 50):.0f} ms  p99 {np.percentile(ms, 99):.0f} ms  "
                  f"max {ms.max():.0f} ms")
            if swaps:
                print(f"  swap inside the control tick (load_state_dict, after the command): p50 "
                      f"{np.median(swaps):.1f} ms  max {max(swaps):.1f} ms")
    finally:
        rclpy.try_shutdown()
    return 0


def across_veth(a) -> int:
    """Re-run this benchmark inside namespace b with the policy node in namespace a (see module docstring)."""
    import subprocess

    from benchmarks import veth

    why = veth.available()
    if why:
        print(f"--veth needs two network namespaces: {why}", file=sys.stderr)
        return 2
    delay, loss = (float(x) for x in a.netem.split(",")) if a.netem else (0.0, 0.0)
    hosts = veth.impairable_hosts() if a.netem else veth.VethPair()
    with hosts as net:
        link = "plain veth"
        if a.netem:
            net.impair(delay, loss)
            link = f"{net.kind}, delay {delay:g} ms and loss {loss:g}% each way"
        if a.rate:
            if not hasattr(net, "limit_rate"):
                print("--rate needs a veth link (tc tbf); do not combine it with --netem here", file=sys.stderr)
                return 2
            net.limit_rate(a.rate)
            link = f"veth, tbf rate {a.rate}"
        print(f"link: {link}", flush=True)
        cmd = net.prefix("b") + [sys.executable, __file__, "--configs", a.configs, "--repeats", str(a.repeats),
                                 "--control-hz", str(a.control_hz), "--task", a.task,
                                 "--policy-prefix", " ".join(net.prefix("a"))]
        return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
