"""One task dynamics: the ROS sim graph's robot node and the plain env move the sim arm alike.

The robot node builds its FrankyRobotConfig from its ``franky.*`` parameters (the graph's parameter
file); the plain env from ``SimBackendConfig.robot_overrides``. Both must give the same per-step
motion for the same command, or benchmarks and the main command would train different tasks.
"""
import dataclasses

import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from mentor.graph import GraphArgs, build_graph  # noqa: E402
from robot_envs.env import SimBackendConfig  # noqa: E402
from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig  # noqa: E402
from robot_envs.sim import SimWorld, SimWorldConfig  # noqa: E402

pytestmark = pytest.mark.sim
HOME = np.array([0.45, 0.0, 0.25, 1.0, 0.0, 0.0, 0.0])
STEP = np.array([0.02, -0.015, -0.012])  # one 2.8 cm command, as an action of ~1 per axis asks for
PERIOD_S = 0.1  # one control period at the tasks' 10 Hz


def _graph_robot_overrides(mode: str) -> dict:
    """FrankyRobotConfig fields the sim graph's robot node gets from its parameters."""
    args = GraphArgs(mode=mode, use_sim=True, task="reach", run_dir="/tmp/unused",
                     checkpoint="x.pt" if mode == "deploy" else "")
    robot = next(n for n in build_graph(args) if n.name == "robot")
    fields = {f.name for f in dataclasses.fields(FrankyRobotConfig)}
    return {k[len("franky."):]: v for k, v in robot.parameters.items()
            if k.startswith("franky.") and k[len("franky."):] in fields}


@pytest.mark.parametrize("mode", ["train", "deploy"])
def test_graph_and_env_configure_the_sim_arm_alike(mode):
    graph = _graph_robot_overrides(mode)
    env = SimBackendConfig().robot_overrides
    for name in ("relative_dynamics_factor", "move_to_dynamics_factor"):
        assert graph.get(name, getattr(FrankyRobotConfig(hostname="x"), name)) == env[name], name


def _displacement(world: SimWorld, overrides: dict) -> float:
    """TCP displacement [m] one control period after one relative command of STEP."""
    cfg = FrankyRobotConfig(**{"hostname": world.hostname, "ignore_realtime": True, **overrides})
    with FrankyRobot(cfg) as robot:
        robot.move_to(HOME, timeout_s=15.0)
        world.clock.sleep(0.3)
        start = robot.read_state().ee_pose[:3].copy()
        robot.command_pose(np.concatenate([start + STEP, HOME[3:]]), None)
        world.clock.sleep(PERIOD_S)
        return float(np.linalg.norm(robot.read_state().ee_pose[:3] - start))


def test_one_command_moves_the_arm_the_same_through_both_paths():
    with SimWorld(SimWorldConfig(cameras=[], hostname="auto")) as world:
        graph = _displacement(world, _graph_robot_overrides("train"))
        env = _displacement(world, SimBackendConfig().robot_overrides)
        slow = _displacement(world, {"relative_dynamics_factor": 0.15, "move_to_dynamics_factor": 0.3})
    assert env > 0.01, f"the env's arm moved only {env * 1e3:.1f} mm in one period"
    assert abs(graph - env) <= 0.2 * env, f"graph path {graph * 1e3:.1f} mm vs env {env * 1e3:.1f} mm"
    assert slow < 0.8 * env  # the test can tell dynamics apart (0.15 was the graph's old setting)
