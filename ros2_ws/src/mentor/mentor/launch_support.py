"""The shared body of ``launch/*.launch.py``: launch arguments -> :class:`GraphArgs` -> launch_ros Nodes.

Each launch file only lists its arguments (name, default, description) and calls
:func:`launch_description`. Argument strings are converted by :func:`graph_args_from_strings`, which
needs no ``launch`` package (so it is tested here, where ``ros2 launch`` is not installed).
"""
from __future__ import annotations

import dataclasses
import os

import yaml

from .graph import GraphArgs, build_graph, dds_transport, node_dds_env, transport_warning

#: a launch file's argument table: (name, default value as a string, description)
LaunchArgs = list[tuple[str, str, str]]

#: Arguments that mean the same in every launch file: one default and one description each
#: (a launch file lists the names it takes with :func:`shared_args`, and its own arguments beside them).
SHARED_ARGS: dict[str, tuple[str, str]] = {
    "task": ("reach", "task name registered in robot_envs.tasks"),
    "task_config": ("", "YAML file overriding the task config (goal pose, workspace box, ...)"),
    "use_sim": ("false", "true: simulated FR3 (franky-sim) and MuJoCo cameras"),
    "robot_ip": ("auto", "Franka FCI address (required without use_sim); use_sim: auto or a loopback address"),
    "camera_names": ("[]", "camera names (policy channel order), YAML list ([] = the task's cameras)"),
    "camera_serials": ("[]", "RealSense serials in camera order, YAML list ([] = the only device)"),
    "namespace": ("", "ROS namespace of this robot's graph (also its transition source name)"),
    "agent_overrides": ("", "YAML mapping of AgentConfig overrides (as in training)"),
    "control_hz": ("10.0", "policy control rate [Hz]"),
    "realtime_ignore": ("false", "franky RealtimeConfig.Ignore (only without a PREEMPT_RT kernel)"),
    "seed": ("0", "seed of scene randomisation and reset noise"),
    "bag_dir": ("", "record the graph's topics into MCAP files (ros2 bag's format) in this directory ('' = off)"),
    "label_frames_dir": ("", "store every camera's frame at each success/failure label here (classifier training)"),
}


def shared_args(*names: str) -> LaunchArgs:
    """The argument-table rows of these :data:`SHARED_ARGS`, in the order given."""
    unknown = [n for n in names if n not in SHARED_ARGS]
    if unknown:
        raise KeyError(f"not shared launch arguments: {unknown} (known: {sorted(SHARED_ARGS)})")
    return [(name, *SHARED_ARGS[name]) for name in names]


def _parse(name: str, type_name: str, raw: str):
    """One launch-argument string as the GraphArgs field's type (YAML for lists and booleans)."""
    if type_name == "str":
        return raw
    value = yaml.safe_load(raw) if raw.strip() else None
    if type_name == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"launch argument {name}:={raw!r} must be true or false")
        return value
    if type_name == "list[str]":
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"launch argument {name}:={raw!r} must be a YAML list, e.g. \"['a', 'b']\"")
        return [str(v) for v in value]
    if type_name in ("int", "float"):
        try:
            return int(raw) if type_name == "int" else float(raw)
        except ValueError:
            raise ValueError(f"launch argument {name}:={raw!r} must be a number") from None
    raise TypeError(f"GraphArgs field {name} has a type ({type_name}) launch arguments cannot carry")


def graph_args_from_strings(mode: str, values: dict[str, str]) -> GraphArgs:
    """GraphArgs for ``mode`` from launch-argument strings; unknown names are an error."""
    fields = {f.name: f for f in dataclasses.fields(GraphArgs)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"launch arguments {sorted(unknown)} are not GraphArgs fields")
    kwargs = {name: _parse(name, str(fields[name].type), raw) for name, raw in values.items() if name != "mode"}
    return GraphArgs(mode=mode, **kwargs)


def node_exit_handler(name: str, primary: bool, shutdown):
    """``on_exit(event, context)`` for one node's ``OnProcessExit``: every exit ends the launch.

    The primary node (learner in train, policy in deploy) finishing with code 0 is the end of the job:
    ``shutdown(reason)`` (the actions that stop the launch). Any other exit outside a shutdown already
    under way (another node dying, the primary failing) raises, which makes launch stop every node and
    ``ros2 launch`` return 1 (launch's LaunchService turns an exception in a handler into a shutdown
    and a non-zero return code).
    """
    def on_exit(event, context):
        code = getattr(event, "returncode", None)
        if getattr(context, "is_shutdown", False):
            return None  # stopping anyway (Ctrl-C, or another node's exit): exits are expected now
        if primary and code == 0:
            return shutdown(f"{name} finished")
        raise RuntimeError(f"mentor: node {name} exited with code {code}"
                           f"{'' if primary else ' while the graph was running'}: stopping the graph")
    return on_exit


def launch_description(mode: str, arguments: LaunchArgs):
    """The LaunchDescription of the ``mode`` graph ("train" or "deploy") with these arguments.

    Any node ending ends the launch (:func:`node_exit_handler`), as ``mentor-run`` does.
    """
    from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name, _default, _help in arguments}
        dds = node_dds_env(localhost_only=False)
        env = {**os.environ, **dds}
        actions = [LogInfo(msg=f"mentor: DDS transport: {dds_transport(env)[0]}")]
        warning = transport_warning(env)
        if warning:
            actions.append(LogInfo(msg=f"mentor: {warning}"))
        for spec in build_graph(graph_args_from_strings(mode, values)):
            node = Node(package="mentor", executable=spec.executable, name=spec.name,
                        namespace=spec.namespace or None, parameters=[spec.parameters],
                        remappings=list(spec.remappings.items()), additional_env=dds,
                        output="screen", emulate_tty=True)
            actions.append(node)
            actions.append(RegisterEventHandler(OnProcessExit(target_action=node, on_exit=node_exit_handler(
                spec.name, spec.primary, lambda reason: [EmitEvent(event=Shutdown(reason=reason))]))))
        return actions

    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in arguments]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
