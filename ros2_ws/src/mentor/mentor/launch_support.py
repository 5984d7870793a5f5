"""The shared body of ``launch/*.launch.py``: launch arguments -> :class:`GraphArgs` -> launch_ros Nodes.

Each launch file only lists its arguments (name, default, description) and calls
:func:`launch_description`. Argument strings are converted by :func:`graph_args_from_strings`, which
needs no ``launch`` package (so it is tested here, where ``ros2 launch`` is not installed).
"""
from __future__ import annotations

import dataclasses

import yaml

from .graph import GraphArgs, build_graph, node_dds_env

#: a launch file's argument table: (name, default value as a string, description)
LaunchArgs = list[tuple[str, str, str]]


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


def launch_description(mode: str, arguments: LaunchArgs):
    """The LaunchDescription of the ``mode`` graph ("train" or "deploy") with these arguments.

    The primary node (learner in train, policy in deploy) ending ends the launch.
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name, _default, _help in arguments}
        actions = []
        for spec in build_graph(graph_args_from_strings(mode, values)):
            node = Node(package="mentor", executable=spec.executable, name=spec.name,
                        namespace=spec.namespace or None, parameters=[spec.parameters],
                        remappings=list(spec.remappings.items()), additional_env=node_dds_env(localhost_only=False),
                        output="screen", emulate_tty=True)
            actions.append(node)
            if spec.primary:
                actions.append(RegisterEventHandler(OnProcessExit(target_action=node,
                                                                  on_exit=[EmitEvent(event=Shutdown())])))
        return actions

    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in arguments]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
