"""Train MENTOR on a Franka (real, or franky-sim with use_sim:=true): the full actor/learner graph.

    ros2 launch mentor train_real.launch.py robot_ip:=172.16.0.2 task:=peg_insertion_real \
        camera_serials:="['123456789012']" run_dir:=/runs/peg
    ros2 launch mentor train_real.launch.py use_sim:=true task:=reach run_dir:=/runs/reach_sim

The nodes and their parameters come from mentor.graph.build_graph (the same description the
embedded runner ``mentor-run`` uses).
"""
import yaml
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from mentor.graph import GraphArgs, build_graph

ARGS = [
    ("task", "reach", "task name registered in robot_envs.tasks"),
    ("task_config", "", "YAML file overriding the task config (goal pose, workspace box, ...)"),
    ("use_sim", "false", "true: simulated FR3 (franky-sim) and MuJoCo cameras"),
    ("robot_ip", "172.16.0.2", "Franka FCI address (or the franky-sim loopback address with use_sim)"),
    ("camera_names", "[]", "camera names (policy channel order), YAML list ([] = the task's cameras)"),
    ("camera_serials", "[]", "RealSense serials in camera order, YAML list ([] = the only device)"),
    ("config_file", "", "parameter YAML (ros__parameters per node); default config/train_<sim|real>.yaml"),
    ("run_dir", "runs/default", "output directory: learner state, outbox, videos, episodes.csv"),
    ("namespace", "", "ROS namespace of this robot's graph (also its transition source name)"),
    ("agent_config", "paper", "mentor_policy preset (paper, tiny, ...) or YAML path"),
    ("agent_overrides", "", "YAML mapping of AgentConfig overrides"),
    ("control_hz", "10.0", "policy control rate [Hz]"),
    ("max_env_steps", "0", "stop after this many env steps (0 = never)"),
    ("use_teleop", "true", "start the teleop node (keyboard / joystick / SpaceMouse)"),
    ("realtime_ignore", "false", "franky RealtimeConfig.Ignore (only without a PREEMPT_RT kernel)"),
    ("seed", "0", "seed of scene randomisation and reset noise"),
]


def _yaml(value):
    return yaml.safe_load(value) if value.strip() else None


def _nodes(context):
    a = {name: LaunchConfiguration(name).perform(context) for name, _d, _h in ARGS}
    graph = GraphArgs(
        mode="train", task=a["task"], task_config=a["task_config"], use_sim=bool(_yaml(a["use_sim"])),
        namespace=a["namespace"], robot_ip=a["robot_ip"], camera_names=list(_yaml(a["camera_names"]) or []),
        camera_serials=[str(s) for s in (_yaml(a["camera_serials"]) or [])], run_dir=a["run_dir"],
        agent_config=a["agent_config"], agent_overrides=a["agent_overrides"], control_hz=float(a["control_hz"]),
        max_env_steps=int(a["max_env_steps"]), config_file=a["config_file"],
        use_teleop=bool(_yaml(a["use_teleop"])), realtime_ignore=bool(_yaml(a["realtime_ignore"])),
        seed=int(a["seed"]))
    actions = []
    for spec in build_graph(graph):
        node = Node(package="mentor", executable=spec.executable, name=spec.name, namespace=spec.namespace or None,
                    parameters=[spec.parameters], remappings=list(spec.remappings.items()), output="screen",
                    emulate_tty=True)
        actions.append(node)
        if spec.primary:  # the learner exits at max_env_steps: end the launch
            actions.append(RegisterEventHandler(OnProcessExit(target_action=node,
                                                              on_exit=[EmitEvent(event=Shutdown())])))
    return actions


def generate_launch_description():
    return LaunchDescription([DeclareLaunchArgument(n, default_value=d, description=h) for n, d, h in ARGS]
                             + [OpaqueFunction(function=_nodes)])
