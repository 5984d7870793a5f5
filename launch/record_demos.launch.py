"""Record demonstrations on a Franka (real, or franky-sim with use_sim:=true): the operator drives.

    ros2 launch mentor record_demos.launch.py robot_ip:=172.16.0.2 task:=peg_insertion_real \
        camera_serials:="['123456789012']" run_dir:=/runs/peg_demos episodes:=20
    ros2 launch mentor record_demos.launch.py use_sim:=true use_teleop:=false use_expert:=true \
        run_dir:=/runs/reach_demos

Every episode resets as in training; the operator drives it with the teleop node (the keyboard in the
terminal that runs the launch, a joystick or a SpaceMouse) while the arm otherwise holds still; in sim
the task's scripted expert can drive instead (use_expert). The learner only stores: after ``episodes``
episodes the launch ends, and ``<run_dir>/learner/demos`` is the demo store for training (``demo_dirs``).
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
    ("run_dir", "runs/demos", "output directory: learner/demos is the demo store"),
    ("namespace", "", "ROS namespace of this robot's graph (also its transition source name)"),
    ("agent_config", "paper", "the agent preset the demos are for (its frame stack); no network is trained"),
    ("control_hz", "10.0", "control rate [Hz]"),
    ("episodes", "10", "demonstrations to record"),
    ("use_teleop", "true", "start the teleop node (keyboard / joystick / SpaceMouse)"),
    ("use_expert", "false", "sim: the task's scripted expert drives every episode"),
    ("realtime_ignore", "false", "franky RealtimeConfig.Ignore (only without a PREEMPT_RT kernel)"),
    ("seed", "0", "seed of scene randomisation and reset noise"),
    ("bag_dir", "", "record the graph's topics into MCAP files (ros2 bag's format) in this directory ('' = off)"),
    ("label_frames_dir", "", "store every camera's frame at each success/failure label here (classifier training)"),
]


def generate_launch_description():
    return launch_description("record", ARGS)
