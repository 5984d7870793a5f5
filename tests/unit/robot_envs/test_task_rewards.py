"""Every task's reward makes success optimal: a scripted oracle that reaches the goal earns a strictly
higher discounted return than a policy that hovers just outside success, under the task's own reward,
episode length and termination rule, at the agent's discounts (cpu preset 0.9, paper 0.99).

The trajectories are kinematic (the rewards only read poses), so each check runs in microseconds.
"""
import numpy as np
import pytest

from mentor_policy.config import load_agent_config
from robot_envs.robot import RobotState
from robot_envs.tasks import RewardContext, TaskConfigError, check_reward_design, get_task
from robot_envs.tasks.peg_insertion import peg_reward
from robot_envs.tasks.push import push_reward

DISCOUNTS = sorted({load_agent_config("cpu").discount, load_agent_config("paper").discount})
DOWN = np.array([1.0, 0.0, 0.0, 0.0])
STEP_M = 0.025  # TCP travel per control step of the scripted policies [m] (the safety limit is 3 cm)


def _state(pos) -> RobotState:
    return RobotState(stamp=0.0, ee_pose=np.concatenate([pos, DOWN]), joint_positions=np.zeros(7), gripper_width=0.0)


def _path(start, goal, n: int) -> list[np.ndarray]:
    """n TCP positions moving at STEP_M per step from ``start`` straight to ``goal``, then staying there."""
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    out, pos = [], start.copy()
    for _ in range(n):
        delta = goal - pos
        dist = np.linalg.norm(delta)
        pos = goal.copy() if dist <= STEP_M else pos + delta / dist * STEP_M
        out.append(pos.copy())
    return out


def _discounted_return(task, reward_fn, n: int, discount: float) -> tuple[float, bool]:
    """Return of one episode whose step t reward is ``reward_fn(t)``, ended as the task ends episodes."""
    ret, succeeded = 0.0, False
    for t in range(n):
        r, success = reward_fn(t)
        ret += discount ** t * r
        succeeded = succeeded or success
        if success and task.terminate_on_success:
            break
    return ret, succeeded


def _assert_oracle_beats_hover(task, oracle, hover, discount):
    n = task.episode_length
    good, good_ok = _discounted_return(task, oracle, n, discount)
    bad, bad_ok = _discounted_return(task, hover, n, discount)
    assert good_ok and not bad_ok, "the scripted policies do not do what they claim"
    assert good > bad, f"{task.name}: oracle return {good:.3f} <= hover return {bad:.3f} at discount {discount}"
    return good, bad


def _reach_returns(task, discount, rng):
    cfg = task.cfg
    target = rng.uniform(cfg.target_min, cfg.target_max)
    start = task.sample_reset_pose(rng)[:3]
    away = (start - target) / np.linalg.norm(start - target)
    hover_point = target + away * (cfg.success_radius + 0.005)  # 4.5 cm from the target centre
    poses = {"target": np.r_[target, 0, 0, 0, 1]}
    oracle_path = _path(start, target, task.episode_length)
    hover_path = _path(start, hover_point, task.episode_length)
    reward = lambda path: lambda t: task.reward(RewardContext(_state(path[t]), object_poses=poses))  # noqa: E731
    return _assert_oracle_beats_hover(task, reward(oracle_path), reward(hover_path), discount)


@pytest.mark.parametrize("discount", DISCOUNTS)
def test_reach_oracle_beats_hovering_4p5_cm_away(discount):
    task, rng = get_task("reach"), np.random.default_rng(0)
    for _ in range(20):
        _reach_returns(task, discount, rng)


@pytest.mark.parametrize("discount", DISCOUNTS)
def test_push_oracle_beats_a_cube_parked_just_outside_the_goal(discount):
    task = get_task("push")
    cfg = task.cfg
    rng = np.random.default_rng(1)
    for _ in range(20):
        cube0 = np.r_[rng.uniform(cfg.cube_min_xy, cfg.cube_max_xy), cfg.cube_half_size]
        goal = np.r_[rng.uniform(cfg.goal_min_xy, cfg.goal_max_xy), 0.0]
        direction = (goal[:2] - cube0[:2]) / np.linalg.norm(goal[:2] - cube0[:2])
        short = goal.copy()
        short[:2] -= direction * (cfg.goal_radius + 0.005)  # cube stops 4.5 cm short of the goal centre
        behind = cube0.copy()
        behind[:2] -= direction * (cfg.cube_half_size + 0.01)

        def trajectory(cube_end):
            """The TCP drives to behind the cube, then pushes it (in contact) to ``cube_end``."""
            tcp = _path(task.reset_pose[:3], behind, 6)
            cubes = [cube0] * len(tcp)
            for c in _path(cube0, cube_end, task.episode_length - len(tcp)):
                cubes.append(c)
                tcp.append(c - np.r_[direction * (cfg.cube_half_size + 0.01), 0.0])
            return lambda t: push_reward(tcp[t], cubes[t], goal, cfg)

        _assert_oracle_beats_hover(task, trajectory(goal), trajectory(short), discount)


@pytest.mark.parametrize("discount", DISCOUNTS)
@pytest.mark.parametrize("shape", ["square", "round", "rect"])
def test_peg_oracle_beats_hovering_just_short_of_inserted(shape, discount):
    task = get_task(f"peg_insertion_{shape}")
    cfg = task.cfg
    hole = np.array([0.5, 0.02, cfg.table_height, 0, 0, 0, 1.0])
    top = hole[2] + cfg.hole_depth
    above = np.array([0.48, 0.0, top + 0.06])
    inserted = np.array([hole[0], hole[1], top - cfg.success_depth - 0.005])  # tip 25 mm deep
    short = np.array([hole[0], hole[1], top - cfg.success_depth + 0.003])  # aligned, 3 mm short of success
    off_axis = inserted + [cfg.lateral_tolerance + 0.003, 0, 0]  # deep enough, but 9 mm off the axis
    for hover_end in (short, off_axis):
        oracle = _path(above, inserted, task.episode_length)
        hover = _path(above, hover_end, task.episode_length)
        _assert_oracle_beats_hover(task, lambda t: peg_reward(oracle[t], hole, cfg),
                                   lambda t: peg_reward(hover[t], hole, cfg), discount)


@pytest.mark.parametrize("discount", DISCOUNTS)
def test_dense_real_peg_oracle_beats_hovering_off_the_goal(discount):
    goal = [0.5, 0.0, 0.1, 1.0, 0.0, 0.0, 0.0]
    task = get_task("peg_insertion_real", goal_pose=goal, dense=True)
    start, goal_pos = np.array([0.5, 0.03, 0.16]), np.array(goal[:3])
    near = goal_pos + [task.cfg.lateral_tolerance * 1.5, 0, 0]
    reward = lambda path: lambda t: task.reward(RewardContext(_state(path[t])))  # noqa: E731
    _assert_oracle_beats_hover(task, reward(_path(start, goal_pos, task.episode_length)),
                               reward(_path(start, near, task.episode_length)), discount)


def test_every_registered_task_passes_the_reward_design_check():
    from robot_envs.tasks import list_tasks
    for name in list_tasks():
        overrides = {"goal_pose": [0.5, 0, 0.1, 1, 0, 0, 0]} if name == "peg_insertion_real" else {}
        if name == "golf_real":
            overrides = {"hole_center_px": [10, 10], "hole_radius_px": 3}
        task = get_task(name, **overrides)
        assert not task.terminate_on_success, name  # the project's rule: fixed horizon
        for discount in DISCOUNTS:
            check_reward_design(task, discount)


def test_ending_at_success_without_a_large_bonus_is_refused_and_would_pay_for_hovering():
    """The old design (dense reward, end at success, no bonus): hovering wins, and the check refuses it."""
    task = get_task("reach", terminate_on_success=True, success_bonus=0.0)
    with pytest.raises(TaskConfigError, match="success_bonus >= 10"):
        check_reward_design(task, 0.9)
    with pytest.raises(AssertionError, match="oracle return"):
        _reach_returns(task, 0.9, np.random.default_rng(0))
    # termination is sound with a bonus worth the whole failure stream
    big = get_task("reach", terminate_on_success=True, success_bonus=10.0)
    check_reward_design(big, 0.9)
    _reach_returns(big, 0.9, np.random.default_rng(0))
    # a sparse task (no reward outside success) may end at success with no bonus at all
    check_reward_design(get_task("human_labelled", terminate_on_success=True), 0.99)
