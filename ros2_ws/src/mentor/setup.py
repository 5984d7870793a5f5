"""ament_python package ``mentor``: nodes, launch files, parameter files, the ``mentor-run`` runner.

Works with ``colcon build`` on a ROS 2 distro and with ``pip install -e ros2_ws/src/mentor``.
The launch files live in the repository's top-level ``launch/`` directory (``launch`` here is a
symlink to it) and are installed into ``share/mentor/launch``.
"""
from glob import glob
from pathlib import Path

from setuptools import setup

PACKAGE = "mentor"
HERE = Path(__file__).resolve().parent
NODES = ["sim_world_node", "camera_node", "robot_node", "episode_node", "policy_node", "learner_node", "teleop_node",
         "expert_node", "recorder_node"]


def _files(pattern: str) -> list[str]:
    return sorted(str(Path(p)) for p in glob(str(Path(pattern))))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", _files("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", _files("config/*.yaml") + _files("config/*.xml")),
    ],
    install_requires=["setuptools", "numpy", "pyyaml"],
    zip_safe=True,
    maintainer="MENTOR maintainers",
    maintainer_email="mentor-maintainers@example.com",
    description="MENTOR visual RL on Franka arms: ROS 2 node graph",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [f"{n} = {PACKAGE}.{n}:main" for n in NODES] + [f"mentor-run = {PACKAGE}.runner:main"],
    },
)
