"""The plain env on franky-sim + MuJoCo rendering: scripted controllers (privileged poses) solve
reach and peg insertion; reset randomisation; observation layout; NaN actions are rejected."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("franky_sim")
pytest.importorskip("mujoco")

from robot_envs.env import EnvConfig, SimBackendConfig, make  # noqa: E402
from robot_envs.safety import NonFiniteActionError  # noqa: E402

pytestmark = pytest.mark.sim
# Wall-clock budget of blocking reset moves: generous, the sim runs slower than real time on a busy machine.
ENV_CFG = dict(move_timeout_s=120.0)
SIM = SimBackendConfig(realtime_factor=1.0)  # physics paced to wall-clock: leaves CPU to franky on 2 cores


def toward(target, ee, scale=0.02):
    return np.clip((np.asarray(target) - ee) / scale, -1.0, 1.0)


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


def run_episode(env, controller, attempts=2):
    """Run scripted episodes until one ends without a robot error (franky-sim on a CPU-starved
    machine can reject a command; the env then truncates with info["robot_error"])."""
    for _ in range(attempts):
        env.reset()
        rewards, info, terminated = [], {}, False
        for _ in range(env.task.episode_length):
            _, r, terminated, truncated, info = env.step(controller(env))
            rewards.append(r)
            if terminated or truncated:
                break
        if info["robot_error"] is None:
            return rewards, info, terminated
        assert truncated, "a robot error must truncate the episode"
    pytest.fail(f"robot errors in {attempts} episodes, last: {info['robot_error']}")


def reach_controller(env):
    target = env.world.object_poses(["target"])["target"][:3]
    return toward(target, env.last_state.ee_pose[:3])


def test_scripted_reach_rewards_rise_and_success_fires(reach_env):
    rewards, info, terminated = run_episode(reach_env, reach_controller)
    assert info["success"] and terminated, f"no success; rewards {np.round(rewards, 3).tolist()}"
    assert rewards[-1] > rewards[0] + 0.2
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


def peg_controller(env):
    cfg = env.task.cfg
    hole = env.world.object_poses(["hole_square"])["hole_square"][:3]
    ee = env.last_state.ee_pose[:3]
    aligned = np.linalg.norm(hole[:2] - ee[:2]) < 0.003
    above = hole[2] + cfg.hole_depth + cfg.tip_offset + 0.01  # tip 1 cm over the block
    z = ee[2] - 0.02 if aligned else max(ee[2], above)  # align above the hole, then descend
    return toward(np.r_[hole[:2], z], ee)


def test_scripted_peg_insertion_square():
    with make("peg_insertion_square", env_config=EnvConfig(seed=0, **ENV_CFG), sim=SIM) as env:
        assert env.spec.frame_channels == 3 and env.spec.proprio_dim == 4
        rewards, info, terminated = run_episode(env, peg_controller)
        assert info["success"] and terminated, f"peg not inserted; rewards {np.round(rewards, 3).tolist()}"
        assert rewards[-1] > rewards[0] + 0.5
