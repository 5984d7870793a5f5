"""The libraries must stay usable without ROS: no rclpy import outside ros2_ws."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("mentor_policy", "robot_envs", "calibration")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_libraries_never_import_ros():
    offenders = []
    scanned = 0
    for lib in LIBRARIES:
        for path in (ROOT / lib).rglob("*.py"):
            scanned += 1
            ros = _imported_modules(path) & {"rclpy", "launch", "launch_ros", "rosidl_runtime_py"}
            if ros:
                offenders.append(f"{path.relative_to(ROOT)} imports {sorted(ros)}")
    assert scanned > 0
    assert not offenders, "ROS imports outside ros2_ws:\n" + "\n".join(offenders)


def test_mentor_policy_needs_no_hardware_sdk():
    offenders = []
    for path in (ROOT / "mentor_policy").rglob("*.py"):
        bad = _imported_modules(path) & {"franky", "franky_sim", "pyrealsense2", "mujoco", "robot_envs"}
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)
