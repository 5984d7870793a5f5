"""Train MENTOR on a Franka (real, or franky-sim with use_sim:=true): the full actor/learner graph.

    ros2 launch mentor train_real.launch.py robot_ip:=172.16.0.2 task:=peg_insertion_real \
        camera_serials:="['123456789012']" run_dir:=/runs/peg
    ros2 launch mentor train_real.launch.py use_sim:=true task:=reach run_dir:=/runs/reach_sim

The nodes and their parameters come from mentor.graph.build_graph (the same description the
embedded runner ``mentor-run`` uses); mentor.launch_support turns these arguments into it.
"""
from mentor.launch_support import launch_description, shared_args

ARGS = shared_args("task", "task_config", "use_sim", "robot_ip", "camera_names", "camera_serials") + [
    ("config_file", "", "parameter YAML (ros__parameters per node); default config/train_<sim|real>.yaml"),
    ("run_dir", "runs/default", "output directory: learner state, outbox, videos, episodes.csv"),
    *shared_args("namespace"),
    ("agent_config", "paper", "mentor_policy preset (paper, tiny, ...) or YAML path"),
    *shared_args("agent_overrides", "control_hz"),
    ("max_env_steps", "0", "stop after this many env steps (0 = never)"),
    ("use_teleop", "true", "start the teleop node (keyboard / joystick / SpaceMouse)"),
    *shared_args("realtime_ignore", "seed", "bag_dir"),
    ("eval_every_episodes", "20",
     "a block of deterministic evaluation episodes after every N training episodes (0 = none)"),
    ("eval_episodes", "5", "episodes per evaluation block; the best block's weights go to checkpoints/best.pt"),
    ("demo_ratio", "0.5", "share of each batch from demonstrations and interventions once there are any (0 = off)"),
    ("demo_dirs", "[]", "demo stores (directories of episode files) for the demonstration buffer, YAML list"),
    ("seed_replay_from", "[]", "earlier runs' learner/replay directories copied into this run's replay, YAML list"),
    *shared_args("label_frames_dir"),
    ("seed_topk_from", "[]", "earlier runs' learner/topk directories offered to this run's store, YAML list"),
    ("robots", "1", "use_sim: this many simulated robots (namespaces r0..), each its own nodes, feeding one learner"),
    ("side", "all", "the nodes this host runs: all, robot (one robot PC) or learner (the learner host)"),
]


def generate_launch_description():
    return launch_description("train", ARGS)
