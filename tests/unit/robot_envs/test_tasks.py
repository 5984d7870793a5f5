"""Task configs, registry, YAML loading and rewards as pure functions of hand-made poses."""
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from robot_envs.robot import RobotState
from robot_envs.sim.scene import SceneBuilder
from robot_envs.tasks import (
    SHAPES,
    RewardContext,
    TaskConfigError,
    config_to_dict,
    get_task,
    list_tasks,
    task_config,
)
from robot_envs.tasks.peg_insertion import insertion_errors, peg_reward, peg_tip_position
from robot_envs.tasks.push import push_reward
from robot_envs.tasks.reach import reach_reward
from robot_envs.tasks.real import pose_goal_errors

DOWN = [1.0, 0.0, 0.0, 0.0]  # TCP z axis pointing down (180 deg about base x)
GOAL = [0.5, 0.1, 0.08] + DOWN


def state(pos, quat=DOWN, width=0.04):
    return RobotState(stamp=0.0, ee_pose=np.r_[pos, quat], joint_positions=np.zeros(7), gripper_width=width)


def pose(pos, quat=(0, 0, 0, 1)):
    return np.r_[pos, quat].astype(float)


def test_registry_lists_all_tasks_and_rejects_unknown():
    names = set(list_tasks())
    assert {"reach", "push", "peg_insertion", "peg_insertion_real", "golf_real", "cable_routing_real",
            "human_labelled"} <= names
    with pytest.raises(KeyError, match="unknown task 'nope'.*available"):
        get_task("nope")


def test_reach_reward_decreases_with_distance_and_succeeds_inside_radius():
    cfg = task_config("reach")
    target = np.array([0.5, 0.0, 0.15])
    rewards = [reach_reward(target + [d, 0, 0], target, cfg)[0] for d in (0.0, 0.02, 0.05, 0.1, 0.3)]
    assert rewards[0] == pytest.approx(1.0 + cfg.success_bonus)  # shaped 1 + the success bonus
    assert all(a > b for a, b in zip(rewards, rewards[1:]))
    assert reach_reward(target + [0, 0, cfg.success_radius * 0.9], target, cfg)[1]
    assert not reach_reward(target + [0, 0, cfg.success_radius * 1.1], target, cfg)[1]
    with pytest.raises(ValueError, match="non-finite"):
        reach_reward([np.nan, 0, 0], target, cfg)


def test_reach_task_reward_uses_privileged_target_pose():
    task = get_task("reach", success_bonus=5.0)
    ctx = RewardContext(state([0.5, 0.0, 0.15]), {"target": pose([0.5, 0.01, 0.15])})
    r, ok = task.reward(ctx)
    assert ok and r > 5.0
    with pytest.raises(KeyError, match="target"):
        task.reward(RewardContext(state([0.5, 0, 0.15])))


def test_reach_randomise_scene_samples_inside_box_and_varies():
    task = get_task("reach")
    rng = np.random.default_rng(0)
    targets = np.array([task.randomise_scene(rng)["target"][:3] for _ in range(20)])
    assert np.all(targets >= task.cfg.target_min) and np.all(targets <= task.cfg.target_max)
    assert np.ptp(targets, axis=0).min() > 0.02


def test_push_reward_shaping_and_success():
    cfg = task_config("push")
    goal = np.array([0.6, 0.0, 0.0])
    cube_far = np.array([0.45, 0.0, 0.025])
    r_far_ee, _ = push_reward([0.3, 0.0, 0.1], cube_far, goal, cfg)
    r_near_ee, ok = push_reward(cube_far + [-0.03, 0, 0], cube_far, goal, cfg)
    assert r_near_ee > r_far_ee and not ok
    r_goal, ok = push_reward([0.57, 0, 0.025], [0.6, 0.01, 0.025], goal, cfg)
    assert ok and r_goal > r_near_ee
    assert not push_reward([0.5, 0, 0.025], [0.6, cfg.goal_radius * 1.2, 0.025], goal, cfg)[1]


def test_push_randomise_scene_keeps_cube_and_goal_apart_on_the_table():
    task = get_task("push")
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = task.randomise_scene(rng)
        assert np.linalg.norm(p["cube"][:2] - p["goal"][:2]) >= task.cfg.min_start_distance
        assert p["cube"][2] == pytest.approx(task.cfg.table_height + task.cfg.cube_half_size)
    with pytest.raises(ValueError, match="cannot place"):
        get_task("push", min_start_distance=5.0).randomise_scene(rng)


def test_peg_tip_and_insertion_errors():
    cfg = task_config("peg_insertion_square")
    tip = peg_tip_position(np.r_[[0.5, 0.0, 0.2], DOWN], cfg)
    np.testing.assert_allclose(tip, [0.5, 0.0, 0.2 - cfg.tip_offset], atol=1e-12)
    hole = pose([0.5, 0.0, 0.0])
    lateral, depth = insertion_errors(np.array([0.503, 0.004, cfg.hole_depth - 0.01]), hole, cfg)
    assert lateral == pytest.approx(0.005) and depth == pytest.approx(0.01)


@pytest.mark.parametrize("tip, success", [
    ([0.5, 0.0, 0.10], False),  # above the block
    ([0.5, 0.0, 0.015], True),  # centred, 25 mm deep (hole_depth 40 mm, success_depth 20 mm)
    ([0.515, 0.0, 0.015], False),  # deep enough but 15 mm off-axis (inside the wall)
])
def test_peg_reward_success_needs_depth_and_alignment(tip, success):
    cfg = task_config("peg_insertion_round")
    r, ok = peg_reward(np.array(tip), pose([0.5, 0.0, 0.0]), cfg)
    assert ok is success
    assert 0.0 <= r <= 1.0 + (cfg.success_bonus if success else 0.0)


def test_peg_reward_rises_as_the_peg_descends_into_the_hole():
    cfg = task_config("peg_insertion_rect")
    hole = pose([0.5, 0.0, 0.0])
    rs = [peg_reward(np.array([0.5, 0.0, z]), hole, cfg)[0] for z in (0.2, 0.1, 0.05, 0.03)]
    assert all(a < b for a, b in zip(rs, rs[1:]))


def test_peg_task_reward_prefers_privileged_peg_pose():
    task = get_task("peg_insertion_square")
    cfg = task.cfg
    hole = pose([0.5, 0.0, 0.0])
    centre_z = cfg.hole_depth - cfg.success_depth - 0.005 + cfg.peg_length / 2
    peg = np.r_[[0.5, 0.0, centre_z], DOWN]  # peg axis +z points down: tip below the centre
    far_ee = state([0.3, 0.2, 0.4])  # the ee pose is ignored when the peg pose is known
    assert task.reward(RewardContext(far_ee, {"hole_square": hole, "peg_square": peg}))[1]
    assert not task.reward(RewardContext(far_ee, {"hole_square": hole}))[1]


def test_multitask_peg_samples_shapes_and_appends_onehot():
    task = get_task("peg_insertion")
    assert task.multi_task and task.proprio_dim == 4 + len(SHAPES)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        task.begin_episode(rng)
        seen.add(task.active_shape)
        p = task.proprio(state([0.5, 0.0, 0.14]))
        assert p.shape == (7,) and p.dtype == np.float32
        assert p[4:].sum() == 1.0 and p[4 + task.task_id] == 1.0
        poses = task.randomise_scene(rng)
        active = poses[f"hole_{task.active_shape}"]
        assert task.cfg.hole_min_xy[0] <= active[0] <= task.cfg.hole_max_xy[0]
        for s in SHAPES:
            if s != task.active_shape:
                assert poses[f"hole_{s}"][0] >= task.cfg.parking_xy[0] - 1e-9
                assert poses[f"peg_{s}"][2] == task.cfg.peg_parking_offset
    assert seen == set(SHAPES)
    assert get_task("peg_insertion_round").proprio_dim == 4


def test_sim_tasks_build_scenes_that_mujoco_compiles():
    mujoco = pytest.importorskip("mujoco")
    for name in ("reach", "push", "peg_insertion"):
        root = ET.fromstring('<mujoco><asset/><worldbody><geom type="plane" size="1 1 0.1"/>'
                             '<body name="robot0_hand" pos="0.5 0 0.3"><geom type="box" size=".02 .05 .02"/>'
                             '</body></worldbody></mujoco>')
        builder = SceneBuilder(root, root.find("worldbody"))
        task = get_task(name)
        task.add_to_scene(builder)
        assert set(task.object_names) <= set(builder.objects)
        model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
        assert model.nbody >= 2 + len(task.object_names)


def test_reset_pose_sampling_is_seeded_and_bounded():
    task = get_task("reach", reset_noise_xy=0.03, reset_noise_yaw=0.2)
    a = task.sample_reset_pose(np.random.default_rng(3))
    b = task.sample_reset_pose(np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    for seed in range(20):
        p = task.sample_reset_pose(np.random.default_rng(seed))
        assert np.all(np.abs(p[:2] - task.reset_pose[:2]) <= 0.03 + 1e-12)
        assert p[2] == task.reset_pose[2]
        angle = 2 * math.acos(min(1.0, abs(float(np.dot(p[3:], task.reset_pose[3:])))))
        assert angle <= 0.2 + 1e-9
        assert np.linalg.norm(p[3:]) == pytest.approx(1.0)


def test_proprio_maps_the_workspace_box_and_gripper_range_to_minus_one_one():
    task = get_task("reach")
    lo, hi = np.array(task.cfg.safety.workspace_min), np.array(task.cfg.safety.workspace_max)
    np.testing.assert_allclose(task.proprio(state(lo, width=0.0)), [-1, -1, -1, -1], atol=1e-6)
    np.testing.assert_allclose(task.proprio(state(hi, width=task.cfg.safety.gripper_max_width)), [1, 1, 1, 1],
                               atol=1e-6)
    p = task.proprio(state((lo + hi) / 2 + [0.01, 0, 0], width=task.cfg.safety.gripper_max_width / 2))
    np.testing.assert_allclose(p, [0.02 / (hi[0] - lo[0]), 0, 0, 0], atol=1e-6)
    assert p.dtype == np.float32


def test_config_validation_messages():
    with pytest.raises(TaskConfigError, match="episode_length"):
        get_task("reach", episode_length=0)
    with pytest.raises(TaskConfigError, match="target_min"):
        get_task("reach", target_min=[0.6, 0, 0], target_max=[0.5, 0.1, 0.1])
    with pytest.raises(TaskConfigError, match="unknown key.*'reach.bogus'|unknown key.*bogus"):
        get_task("reach", bogus=1)
    with pytest.raises(TaskConfigError, match="max_translation_per_step"):
        get_task("reach", **{"safety.max_translation_per_step": -1})
    with pytest.raises(TaskConfigError, match="shape"):
        get_task("peg_insertion", shape="hexagon")


def test_yaml_config_file_and_dotted_overrides(tmp_path):
    f = tmp_path / "peg.yaml"
    f.write_text("goal_pose: [0.5, 0.1, 0.08, 1, 0, 0, 0]\nepisode_length: 40\n"
                 "safety:\n  workspace_min: [0.3, -0.2, 0.02]\n  workspace_max: [0.7, 0.2, 0.4]\n"
                 "cameras: [wrist, front]\n")
    task = get_task("peg_insertion_real", config_file=f, **{"safety.max_translation_per_step": 0.01})
    assert task.episode_length == 40 and task.needs_human_reset
    assert task.cfg.safety.workspace_min == (0.3, -0.2, 0.02)
    assert task.cfg.safety.max_translation_per_step == 0.01
    assert task.cfg.cameras == ("wrist", "front")
    # round trip through the plain-dict form
    import yaml
    g = tmp_path / "round.yaml"
    g.write_text(yaml.safe_dump(config_to_dict(task.cfg)))
    assert get_task("peg_insertion_real", config_file=g).cfg == task.cfg


def test_yaml_errors_are_clear(tmp_path):
    with pytest.raises(TaskConfigError, match="not found"):
        get_task("reach", config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("episode_length: [1, 2\n")
    with pytest.raises(TaskConfigError, match="not valid YAML"):
        get_task("reach", config_file=bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(TaskConfigError, match="mapping"):
        get_task("reach", config_file=bad)
    bad.write_text("name: push\n")
    with pytest.raises(TaskConfigError, match="names task 'push'"):
        get_task("reach", config_file=bad)
    with pytest.raises(TaskConfigError, match="goal_pose"):
        get_task("peg_insertion_real")


def test_peg_insertion_real_reward_from_recorded_goal():
    task = get_task("peg_insertion_real", goal_pose=GOAL)
    assert task.needs_human_reset
    lateral, axial = pose_goal_errors(np.array(GOAL), np.array(GOAL))
    assert lateral == pytest.approx(0) and axial == pytest.approx(0)
    assert task.reward(RewardContext(state([0.5, 0.101, 0.081]))) == (1.0, True)
    assert task.reward(RewardContext(state([0.5, 0.1, 0.10]))) == (0.0, False)  # 2 cm above: not inserted
    assert task.reward(RewardContext(state([0.51, 0.1, 0.08]))) == (0.0, False)  # 1 cm off-axis
    assert task.reward(RewardContext(state([0.5, 0.1, 0.10]), human_label=True))[1]  # operator overrides
    dense = get_task("peg_insertion_real", goal_pose=GOAL, dense=True)
    near = dense.reward(RewardContext(state([0.5, 0.1, 0.09])))[0]
    assert near > dense.reward(RewardContext(state([0.5, 0.1, 0.15])))[0]


def _ball_image(u, v, size=(120, 160), r=6):
    import cv2
    img = np.full(size + (3,), (40, 90, 40), np.uint8)  # green felt
    cv2.circle(img, (int(u), int(v)), r, (255, 140, 0), -1)  # orange ball (RGB)
    return img


def test_golf_real_success_from_ball_in_hole_region():
    task = get_task("golf_real", hole_center_px=[100, 60], hole_radius_px=12)
    assert task.reward(RewardContext(state([0.5, 0, 0.2]), images={"front": _ball_image(104, 63)})) == (1.0, True)
    assert task.reward(RewardContext(state([0.5, 0, 0.2]), images={"front": _ball_image(40, 30)})) == (0.0, False)
    empty = np.full((120, 160, 3), (40, 90, 40), np.uint8)
    assert task.reward(RewardContext(state([0.5, 0, 0.2]), images={"front": empty})) == (0.0, False)
    with pytest.raises(KeyError, match="front"):
        task.reward(RewardContext(state([0.5, 0, 0.2])))


def test_golf_real_table_plane_region_via_homography():
    H = [[0.001, 0, 0.3], [0, 0.001, -0.1], [0, 0, 1]]  # 1 mm per pixel, origin offset
    task = get_task("golf_real", image_to_table=H, hole_center_m=[0.4, -0.04], hole_radius_m=0.01)
    assert task.ball_in_hole(_ball_image(100, 60))  # -> (0.4, -0.04)
    assert not task.ball_in_hole(_ball_image(130, 60))  # 3 cm away
    with pytest.raises(TaskConfigError, match="hole_center_m"):
        get_task("golf_real", image_to_table=H)


def test_human_labelled_and_cable_routing_without_classifier_use_labels():
    for name in ("human_labelled", "cable_routing_real"):
        task = get_task(name)
        assert task.needs_human_reset
        assert task.reward(RewardContext(state([0.5, 0, 0.2]), human_label=True)) == (1.0, True)
        assert task.reward(RewardContext(state([0.5, 0, 0.2]), human_label=False)) == (0.0, False)
        assert task.reward(RewardContext(state([0.5, 0, 0.2]))) == (0.0, False)


def test_shipped_example_yaml_files_load():
    from pathlib import Path

    import robot_envs.tasks as tasks_pkg
    files = sorted(Path(tasks_pkg.__file__).parent.glob("*.example.yaml"))
    assert len(files) >= 3
    for f in files:
        name = f.name.split(".")[0]
        overrides = {"classifier_path": None} if name == "cable_routing_real" else {}  # no model file here
        task = get_task(name, config_file=f, **overrides)
        assert task.name == name and task.needs_human_reset
