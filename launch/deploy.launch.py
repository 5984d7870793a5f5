"""Evaluate a trained MENTOR policy (checkpoint or ONNX) for N episodes: no learner.

    ros2 launch mentor deploy.launch.py onnx:=/runs/peg/policy.onnx episodes:=20 run_dir:=/runs/peg_eval \
        robot_ip:=172.16.0.2 task:=peg_insertion_real camera_serials:="['123456789012']"

Writes <run_dir>/deploy_summary.json (success rate, returns), <run_dir>/videos/episode_*.mp4 and
<run_dir>/episodes.csv; the policy node exits after the last episode.
"""
from mentor.launch_support import launch_description

ARGS = [
    ("task", "reach", "task name registered in robot_envs.tasks"),
    ("task_config", "", "YAML file overriding the task config"),
    ("use_sim", "false", "true: simulated FR3 (franky-sim) and MuJoCo cameras"),
    ("robot_ip", "auto", "Franka FCI address (required without use_sim); use_sim: auto or a loopback address"),
    ("camera_names", "[]", "camera names (policy channel order), YAML list ([] = the task's cameras)"),
    ("camera_serials", "[]", "RealSense serials in camera order, YAML list"),
    ("config_file", "", "parameter YAML; default config/deploy_<sim|real>.yaml"),
    ("run_dir", "runs/deploy", "output directory: videos, deploy_summary.json, episodes.csv"),
    ("namespace", "", "ROS namespace of this robot's graph"),
    ("agent_config", "paper", "agent preset the checkpoint was trained with (not needed for ONNX)"),
    ("agent_overrides", "", "YAML mapping of AgentConfig overrides used in training"),
    ("checkpoint", "", "learner checkpoint (.pt) to evaluate"),
    ("onnx", "", "exported ONNX policy to evaluate (takes precedence over checkpoint)"),
    ("episodes", "10", "number of evaluation episodes"),
    ("control_hz", "10.0", "policy control rate [Hz]"),
    ("use_teleop", "true", "start the teleop node (reset confirmation, success labels)"),
    ("realtime_ignore", "false", "franky RealtimeConfig.Ignore (only without a PREEMPT_RT kernel)"),
    ("seed", "0", "seed of scene randomisation and reset noise"),
    ("bag_dir", "", "record the graph's topics into MCAP files (ros2 bag's format) in this directory ('' = off)"),
]


def generate_launch_description():
    return launch_description("deploy", ARGS)
