"""Test-wide settings: headless rendering, isolated ROS domains, import paths."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Graph tests must not hear other processes on this machine or the network.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
for p in (ROOT, ROOT / "ros2_ws" / "src" / "mentor"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op torch thread per test: the tests use tiny shapes, where two spinning OpenMP threads on a
    shared 2-core machine made updates up to ~35x slower. Tests never assert on time; this only keeps CI short."""
    try:
        import torch
    except ImportError:  # a test environment without torch (e.g. the ONNX-only path)
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
