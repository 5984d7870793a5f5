"""Two SimWorlds in sequence in one process, each rendering a camera while FrankyRobot streams
command_pose at 10 Hz (sim clock): the second arm must reach its goal like the first.

Before the fix, the later worlds' arms failed in about half the runs here ("Motion planner failed
with error code -101/-110/-111", or the arm drifting far off course): the software-GL renderer took
every core while franky-sim stepped on without waiting for franky's commands. See SimWorld's
``lockstep_timeout_s`` and the LP_NUM_THREADS note in robot_envs/sim/world.py."""
import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")
pytest.importorskip("mujoco")

from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig  # noqa: E402
from robot_envs.sim.world import SimCameraConfig, SimWorld, SimWorldConfig  # noqa: E402

pytestmark = pytest.mark.sim
DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def _stream_to_goal(world: SimWorld, robot: FrankyRobot, offset, ticks: int = 22) -> list[float]:
    """10 Hz (sim time) 1.5 cm steps toward start + offset, rendering each tick; distances to the goal."""
    start = robot.read_state().ee_pose
    goal = start.copy()
    goal[:3] += offset
    goal[3:] = DOWN
    lo = np.minimum(start[:3], goal[:3]) - 0.01  # "on course": inside the start-goal box + 1 cm
    hi = np.maximum(start[:3], goal[:3]) + 0.01
    dists = []
    for _ in range(ticks):
        state = robot.read_state()
        assert state.error is None, f"robot error after {len(dists)} ticks: {state.error}"
        cur = state.ee_pose
        d = goal[:3] - cur[:3]
        step = goal.copy()
        step[:3] = cur[:3] + d * min(1.0, 0.015 / max(float(np.linalg.norm(d)), 1e-9))
        robot.command_pose(step)
        frame = world.render("front")
        assert frame.image.shape == (84, 84, 3)
        world.clock.sleep(0.1)
        pos = robot.read_state().ee_pose[:3]
        assert np.all(pos >= lo) and np.all(pos <= hi), f"off course after {len(dists) + 1} ticks: {pos}"
        dists.append(float(np.linalg.norm(pos - goal[:3])))
    return dists


def test_second_world_with_rendering_reaches_its_goal():
    """realtime_factor=0 as in the env tests (the sim as fast as the CPU allows)."""
    cam = SimCameraConfig(name="front", width=84, height=84)
    for run in range(2):
        cfg = SimWorldConfig(cameras=[cam], hostname="auto", realtime_factor=0.0)
        with SimWorld(cfg) as world:
            rcfg = FrankyRobotConfig(hostname=world.hostname, ignore_realtime=True, gripper_enabled=False,
                                     relative_dynamics_factor=0.4)
            with FrankyRobot(rcfg) as robot:
                dists = _stream_to_goal(world, robot, [0.06, 0.06, -0.15])
                final = robot.read_state()
                assert final.error is None, f"run {run}: {final.error}"
                assert dists[-1] < 3e-3, f"run {run}: {np.round(dists, 4).tolist()}"


def test_lockstep_timeout_is_validated():
    with pytest.raises(ValueError, match="lockstep_timeout_s"):
        SimWorldConfig(cameras=[], lockstep_timeout_s=-0.1)
    with pytest.raises(ValueError, match="lockstep_timeout_s"):
        SimWorldConfig(cameras=[], lockstep_timeout_s=float("nan"))
