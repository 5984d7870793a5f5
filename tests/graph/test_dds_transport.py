"""Node processes talk UDP, not Fast DDS shared memory, so a node killed with -9 can be restarted.

Why: a Fast DDS process killed with SIGKILL leaves its shared-memory segments and port locks behind,
and a restarted subscriber may match its publishers yet receive nothing (see ``mentor.graph.node_dds_env``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mentor.graph import LOCALHOST_UDP_PROFILE, NETWORK_UDP_PROFILE, dds_transport, node_dds_env, package_config_dir
from mentor.runner import node_env

SHM = Path("/dev/shm")
# A node with a latched publisher or subscriber. It prints the /dev/shm entries while it is alive
# (Fast DDS removes its own segments on a clean exit) and, as subscriber, what it received.
PROBE = """
import os, sys, time, rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
rclpy.init()
node = rclpy.create_node("dds_probe_" + sys.argv[1])
got = []
if sys.argv[1] == "pub":
    node.create_publisher(String, "dds_probe", qos).publish(String(data="latched"))
else:
    node.create_subscription(String, "dds_probe", lambda m: got.append(m.data), qos)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end and not got:
    rclpy.spin_once(node, timeout_sec=0.1)
print(" ".join(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else "")
print("received" if got else "nothing")
"""


def _probe(role: str, seconds: float, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PROBE, role, str(seconds)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[set[str], str]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    shm_line, result = out.strip().splitlines()[-2:] if out.count("\n") >= 2 else ("", out.strip())
    return {f for f in shm_line.split() if "fastdds" in f}, result


def test_node_env_selects_udp_and_keeps_a_users_choice():
    local = node_env(domain_id=5)
    assert local["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"  # LOCALHOST would make rmw add shared memory
    profile = Path(local["FASTDDS_DEFAULT_PROFILES_FILE"])
    assert profile == package_config_dir() / LOCALHOST_UDP_PROFILE and profile.is_file()
    text = profile.read_text()
    assert "<useBuiltinTransports>false</useBuiltinTransports>" in text and "<address>127.0.0.1</address>" in text
    network = node_dds_env(localhost_only=False, environ={})
    assert network["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    assert Path(network["FASTDDS_DEFAULT_PROFILES_FILE"]) == package_config_dir() / NETWORK_UDP_PROFILE
    mine = {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my_dds.xml"}
    assert node_dds_env(True, mine) == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    assert node_dds_env(False, mine) == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}


def test_the_network_profile_keeps_datagrams_below_the_ethernet_mtu():
    """Across hosts a large message (the weights) must be fragmented by DDS, not by IP: one lost IP fragment
    loses the whole datagram. The profile parses as Fast DDS reads it: UDPv4 only, no shared memory."""
    import xml.etree.ElementTree as ET

    env = node_dds_env(localhost_only=False, environ={})
    root = ET.parse(env["FASTDDS_DEFAULT_PROFILES_FILE"]).getroot()
    values = {el.tag.rsplit("}", 1)[-1]: (el.text or "").strip() for el in root.iter()}
    assert values["type"] == "UDPv4" and values["useBuiltinTransports"] == "false"
    assert 576 <= int(values["maxMessageSize"]) <= 1500 - 20 - 8  # IPv4 + UDP headers inside a 1500 B frame
    assert not dds_transport(env)[1]  # no shared memory: nodes survive kill -9


@pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm on this OS: Fast DDS shared memory cannot be observed")
def test_node_processes_share_data_over_udp_without_shared_memory():
    env = node_env(domain_id=180 + os.getpid() % 20)
    before = set(os.listdir(SHM))
    pub = _probe("pub", 20.0, env)  # a publisher receives nothing: it runs until killed below
    sub = _probe("sub", 15.0, env)
    sub_shm, received = _finish(sub)
    pub.kill()
    pub.communicate(timeout=30)
    assert received == "received", "a latched message did not reach a late subscriber over UDP"
    assert sub_shm - before == set(), f"node processes created Fast DDS shared memory: {sorted(sub_shm - before)}"
    # the same probe with Fast DDS defaults does create segments, so the check above can fail
    default = {k: v for k, v in env.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    default["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    shm, _ = _finish(_probe("pub", 1.0, default))
    assert shm - before, "Fast DDS created no shared memory by default: is it the RMW in use?"
