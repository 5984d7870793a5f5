"""The Dockerfile cannot be built on these machines: check every path and name it relies on."""
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(keyword, argument) pairs with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arg = line.partition(" ")
        out.append((keyword.upper(), arg.strip()))
    return out


def test_base_image_is_ros2_jazzy():
    froms = [arg for kw, arg in _instructions() if kw == "FROM"]
    assert froms and froms[0].startswith("ros:jazzy"), froms


def test_every_copy_source_exists():
    copies = [arg for kw, arg in _instructions() if kw == "COPY"]
    assert copies
    for arg in copies:
        *sources, _dest = shlex.split(arg)
        for src in sources:
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"


def test_entrypoint_and_default_command_point_to_real_files():
    ins = dict((kw, arg) for kw, arg in _instructions() if kw in ("ENTRYPOINT", "CMD"))
    assert (ROOT / "docker" / "entrypoint.sh").exists()
    cmd = ins["CMD"]
    launch_files = re.findall(r'"([\w.]+\.launch\.py)"', cmd)
    assert launch_files, cmd
    for name in launch_files:
        assert (ROOT / "launch" / name).exists(), f"CMD launches {name}, missing from launch/"


def test_constraints_pin_every_runtime_dependency():
    pins = {}
    for line in (ROOT / "docker" / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"unpinned constraint: {line}"
            pins[name.lower()] = version
    for needed in ("numpy", "pyyaml", "opencv-python-headless", "onnxruntime", "franky-control",
                   "franky-sim", "mujoco", "pyrealsense2"):
        assert needed in pins, f"{needed} is not pinned in docker/constraints.txt"


def test_workspace_builds_the_mentor_package():
    run_lines = " ".join(arg for kw, arg in _instructions() if kw == "RUN")
    assert "colcon build" in run_lines
    assert (ROOT / "ros2_ws" / "src" / "mentor" / "package.xml").exists()
    assert (ROOT / "ros2_ws" / "src" / "mentor" / "setup.py").exists()
