"""``python -m mentor.graph_probe [wait_s]``: print the ROS nodes visible in this process's domain.

Prints one JSON list of fully qualified node names (``/ns/name``) after waiting ``wait_s`` seconds
(default 2.0) for DDS discovery. ``mentor-run`` runs it in a subprocess, with the environment its
nodes get (ROS_DOMAIN_ID, discovery range), to refuse to start a graph whose node names are taken.
"""
from __future__ import annotations

import json
import os
import sys
import time


def visible_nodes(wait_s: float) -> list[str]:
    import rclpy

    rclpy.init()
    try:
        node = rclpy.create_node(f"mentor_graph_probe_{os.getpid()}")
        time.sleep(wait_s)
        names = node.get_node_names_and_namespaces()
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return sorted(f"{ns.rstrip('/')}/{name}" for name, ns in names if not name.startswith("mentor_graph_probe_"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wait_s = float(argv[0]) if argv else 2.0
    print(json.dumps(visible_nodes(wait_s)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
