"""Task registry: ``get_task(name, config_file=None, **overrides)``, ``list_tasks()``.

Sim tasks (privileged rewards): ``reach``, ``push``, ``peg_insertion`` (shape ``all`` = multi-task)
and its single-shape variants ``peg_insertion_square|round|rect``. Real tasks (human resets):
``peg_insertion_real``, ``golf_real``, ``cable_routing_real``, ``human_labelled``.
"""
from robot_envs.tasks.base import (
    RewardContext,
    SimTask,
    Task,
    TaskConfig,
    TaskConfigError,
    check_reward_design,
    config_to_dict,
    get_task,
    list_tasks,
    register_task,
    task_config,
)
from robot_envs.tasks.peg_insertion import SHAPES, PegInsertionConfig, PegInsertionTask
from robot_envs.tasks.push import PushConfig, PushTask
from robot_envs.tasks.reach import ReachConfig, ReachTask
from robot_envs.tasks.real import (
    CableRoutingRealTask,
    GolfRealConfig,
    GolfRealTask,
    HumanLabelledTask,
    PegInsertionRealConfig,
    PegInsertionRealTask,
    RealTaskConfig,
)


def _register_builtin() -> None:
    from robot_envs.tasks import base

    if "reach" in base._REGISTRY:
        return
    register_task("reach", ReachTask)
    register_task("push", PushTask)
    register_task("peg_insertion", PegInsertionTask)
    for shape in SHAPES:
        register_task(f"peg_insertion_{shape}", PegInsertionTask, {"shape": shape})
    register_task("peg_insertion_real", PegInsertionRealTask)
    register_task("golf_real", GolfRealTask)
    register_task("cable_routing_real", CableRoutingRealTask)
    register_task("human_labelled", HumanLabelledTask)


_register_builtin()

__all__ = [
    "RewardContext", "Task", "SimTask", "TaskConfig", "TaskConfigError", "get_task", "list_tasks",
    "check_reward_design", "register_task", "task_config", "config_to_dict", "ReachConfig", "ReachTask",
    "PushConfig", "PushTask", "PegInsertionConfig", "PegInsertionTask", "SHAPES", "RealTaskConfig",
    "PegInsertionRealConfig", "PegInsertionRealTask", "GolfRealConfig", "GolfRealTask",
    "CableRoutingRealTask", "HumanLabelledTask",
]
