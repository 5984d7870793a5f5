"""Test-wide settings: headless rendering, isolated ROS domains, import paths."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Graph tests must not hear other processes on this machine or the network.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
for p in (ROOT, ROOT / "ros2_ws" / "src" / "mentor"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
