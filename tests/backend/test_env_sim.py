"""The plain env on franky-sim + MuJoCo rendering: the scripted experts (robot_envs.experts, privileged poses)
solve reach, push and peg insertion; reset randomisation; observation layout; NaN actions are rejected."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("franky_sim")
pytest.importorskip("mujoco")

from robot_envs.env import EnvConfig, SimBackendConfig, make  # noqa: E402
from robot_envs.experts import peg_expert, push_expert, reach_expert  # noqa: E402
from robot_envs.safety import NonFiniteActionError  # noqa: E402

pytestmark = pytest.mark.sim
# Wall-clock budget of blocking reset moves: generous, the sim runs slower than real time on a busy machine.
ENV_CFG = dict(move_timeout_s=120.0)
SIM = SimBackendConfig()  # physics as fast as the CPU allows


def run_episode(env, new_controller, attempts=2):
    """Run scripted episodes (a fresh ``new_controller()`` each) until one ends without a robot error
    (franky-sim on a CPU-starved machine can reject a command; the env then truncates with
    info["robot_error"]). The scripted episode stops at its first success step (tasks run a fixed
    horizon and never terminate on success, so the rest would only cost time); ``terminated`` says
    whether the env ended the episode itself."""
    for _ in range(attempts):
        env.reset()
        controller = new_controller()
        rewards, info, terminated = [], {}, False
        for _ in range(env.task.episode_length):
            _, r, terminated, truncated, info = env.step(controller(env))
            rewards.append(r)
            if terminated or truncated or info["success"]:
                break
        if info["robot_error"] is None:
            return rewards, info, terminated
        assert truncated, "a robot error must truncate the episode"
    pytest.fail(f"robot errors in {attempts} episodes, last: {info['robot_error']}")


def _peg_episode() -> tuple:
    with make("peg_insertion_square", env_config=EnvConfig(seed=0, **ENV_CFG), sim=SIM) as env:
        rewards, info, terminated = run_episode(env, lambda: peg_expert)
        return env.spec.frame_channels, env.spec.proprio_dim, rewards, bool(info["success"]), terminated


def test_scripted_peg_insertion_square():
    channels, proprio_dim, rewards, success, terminated = _peg_episode()
    assert channels == 3 and proprio_dim == 4
    assert success and not terminated, f"peg not inserted; rewards {np.round(rewards, 3).tolist()}"
    assert rewards[-1] > rewards[0] + 0.5


def _push_episode() -> tuple:
    with make("push", env_config=EnvConfig(seed=0, **ENV_CFG), sim=SIM, episode_length=100) as env:
        starts = []

        def new_controller():  # run_episode resets the env first: the cube is where this episode starts
            starts.append(env.world.object_poses(["cube"])["cube"].copy())
            return push_expert()
        rewards, info, terminated = run_episode(env, new_controller)
        start = starts[-1]  # cube position when the successful episode began
        moved = float(np.linalg.norm(env.world.object_poses(["cube"])["cube"][:2] - start[:2]))
        return rewards, bool(info["success"]), terminated, moved


def test_scripted_push():
    rewards, success, terminated, moved = _push_episode()
    assert success and not terminated, f"cube not in the goal; rewards {np.round(rewards, 3).tolist()}"
    assert moved > 0.05 and rewards[-1] > rewards[0] + 0.3


@pytest.fixture(scope="module")
def reach_env():
    env = make("reach", env_config=EnvConfig(seed=0, **ENV_CFG), sim=SIM, cameras=["front", "side"], episode_length=60)
    yield env
    env.close()


def test_observation_layout(reach_env):
    obs = reach_env.reset()
    spec = reach_env.spec
    assert spec.frame_channels == 6 and spec.image_size == (84, 84) and spec.action_dim == 3
    assert obs["image"].shape == (6, 84, 84) and obs["image"].dtype == np.uint8
    assert obs["proprio"].shape == (spec.proprio_dim,) and obs["proprio"].dtype == np.float32
    # two different viewpoints, both showing something other than a flat colour
    assert obs["image"][:3].std() > 5 and obs["image"][3:].std() > 5
    assert not np.array_equal(obs["image"][:3], obs["image"][3:])


def test_scripted_reach_rewards_rise_and_success_fires(reach_env):
    rewards, info, terminated = run_episode(reach_env, lambda: reach_expert)
    assert info["success"] and not terminated, f"no success; rewards {np.round(rewards, 3).tolist()}"
    assert len(rewards) >= 2 and rewards[-1] > rewards[0]
    assert info["t"] == len(rewards)


def test_reset_randomises_the_target_and_image(reach_env):
    env = reach_env
    obs_a = env.reset()
    a = env.world.object_poses(["target"])["target"]
    obs_b = env.reset()
    b = env.world.object_poses(["target"])["target"]
    assert np.linalg.norm(a[:3] - b[:3]) > 0.01
    assert np.all(b[:3] >= env.task.cfg.target_min) and np.all(b[:3] <= env.task.cfg.target_max)
    assert np.abs(obs_a["image"].astype(int) - obs_b["image"].astype(int)).sum() > 0


def test_safety_clamp_is_reported_and_nan_rejected(reach_env):
    env = reach_env
    env.reset()
    _, _, _, _, info = env.step(np.array([1.0, 1.0, 1.0]))  # 3.5 cm diagonal > 3 cm per-step limit
    assert info["safety_clamped"] and info["clamp_distance"] > 0
    with pytest.raises(NonFiniteActionError):
        env.step(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4))




def test_real_task_flow_on_the_simulated_arm(reach_env):
    """A human-labelled real task run on the sim arm and cameras: the reset waits for the operator's
    confirmation hook, the operator's label drives reward and success."""
    from robot_envs.env import HumanResetRequired, RobotEnv
    from robot_envs.tasks import get_task

    task = get_task("human_labelled", cameras=["front", "side"], reset_pose=[0.45, 0.0, 0.25, 1, 0, 0, 0])
    prompts, labels = [], iter([None, False, True])
    env = RobotEnv(reach_env.robot, reach_env.cameras, task, reach_env.world.clock,
                   config=EnvConfig(seed=1, **ENV_CFG), confirm_reset=prompts.append,
                   label_source=lambda: next(labels))
    obs = env.reset()  # not closed here: the robot and cameras belong to the reach_env fixture
    assert len(prompts) == 1 and "re-stage" in prompts[0]
    assert obs["image"].shape == (6, 84, 84)
    results = [env.step(np.zeros(3)) for _ in range(3)]
    assert [r[1] for r in results] == [0.0, 0.0, 1.0]
    assert results[-1][4]["success"] and not results[-1][2]  # success counted; the fixed horizon goes on

    unattended = RobotEnv(reach_env.robot, reach_env.cameras, task, reach_env.world.clock,
                          config=EnvConfig(**ENV_CFG))  # default hook: terminal prompt
    with pytest.raises(HumanResetRequired, match="confirm_reset"):
        unattended.reset()


def test_make_argument_errors():
    with pytest.raises(ValueError, match="backend='real'"):
        make("human_labelled", backend="sim")
    with pytest.raises(ValueError, match="robot_config"):
        make("human_labelled", backend="real")
    with pytest.raises(ValueError, match="privileged"):
        make("reach", backend="real")
    with pytest.raises(ValueError, match="backend must be"):
        make("reach", backend="gazebo")
