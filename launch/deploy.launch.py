"""Evaluate a trained MENTOR policy (checkpoint or ONNX) for N episodes: no learner.

    ros2 launch mentor deploy.launch.py onnx:=/runs/peg/policy.onnx episodes:=20 run_dir:=/runs/peg_eval \
        robot_ip:=172.16.0.2 task:=peg_insertion_real camera_serials:="['123456789012']"

Writes <run_dir>/deploy_summary.json (success rate, returns), <run_dir>/videos/episode_*.mp4 and
<run_dir>/episodes.csv; the policy node exits after the last episode.
"""
from mentor.launch_support import launch_description, shared_args

ARGS = shared_args("task", "task_config", "use_sim", "robot_ip", "camera_names", "camera_serials") + [
    ("config_file", "", "parameter YAML; default config/deploy_<sim|real>.yaml"),
    ("run_dir", "runs/deploy", "output directory: videos, deploy_summary.json, episodes.csv"),
    *shared_args("namespace"),
    ("agent_config", "paper", "agent preset the checkpoint was trained with (not needed for ONNX)"),
    *shared_args("agent_overrides"),
    ("checkpoint", "", "learner checkpoint (.pt) to evaluate"),
    ("onnx", "", "exported ONNX policy to evaluate (takes precedence over checkpoint)"),
    ("episodes", "10", "number of evaluation episodes"),
    *shared_args("control_hz"),
    ("use_teleop", "true", "start the teleop node (reset confirmation, success labels)"),
    *shared_args("realtime_ignore", "seed", "bag_dir"),
]


def generate_launch_description():
    return launch_description("deploy", ARGS)
