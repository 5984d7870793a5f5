"""Train MENTOR on a Franka (real, or franky-sim with use_sim:=true): the full actor/learner graph.

    ros2 launch mentor train_real.launch.py robot_ip:=172.16.0.2 task:=peg_insertion_real \
        camera_serials:="['123456789012']" run_dir:=/runs/peg
    ros2 launch mentor train_real.launch.py use_sim:=true task:=reach run_dir:=/runs/reach_sim

The nodes and their parameters come from mentor.graph.build_graph (the same description the
embedded runner ``mentor-run`` uses); mentor.launch_support turns these arguments into it.
"""
from mentor.launch_support import launch_description

ARGS = [
    ("task", "reach", "task name registered in robot_envs.tasks"),
    ("task_config", "", "YAML file overriding the task config (goal pose, workspace box, ...)"),
    ("use_sim", "false", "true: simulated FR3 (franky-sim) and MuJoCo cameras"),
    ("robot_ip", "auto", "Franka FCI address (required without use_sim); use_sim: auto or a loopback address"),
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
    ("bag_dir", "", "record the graph's topics into MCAP files (ros2 bag's format) in this directory ('' = off)"),
    ("eval_every_episodes", "20",
     "a block of deterministic evaluation episodes after every N training episodes (0 = none)"),
    ("eval_episodes", "5", "episodes per evaluation block; the best block's weights go to checkpoints/best.pt"),
    ("demo_ratio", "0.5", "share of each batch from demonstrations and interventions once there are any (0 = off)"),
    ("demo_dirs", "[]", "demo stores (directories of episode files) for the demonstration buffer, YAML list"),
    ("seed_replay_from", "[]", "earlier runs' learner/replay directories copied into this run's replay, YAML list"),
    ("label_frames_dir", "", "store every camera's frame at each success/failure label here (classifier training)"),
    ("seed_topk_from", "[]", "earlier runs' learner/topk directories offered to this run's store, YAML list"),
    ("robots", "1", "use_sim: this many simulated robots (namespaces r0..), each its own nodes, feeding one learner"),
    ("side", "all", "the nodes this host runs: all, robot (one robot PC) or learner (the learner host)"),
]


def generate_launch_description():
    return launch_description("train", ARGS)
