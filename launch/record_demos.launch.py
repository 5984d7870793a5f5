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
from mentor.launch_support import launch_description, shared_args

ARGS = shared_args("task", "task_config", "use_sim", "robot_ip", "camera_names", "camera_serials") + [
    ("config_file", "", "parameter YAML (ros__parameters per node); default config/train_<sim|real>.yaml"),
    ("run_dir", "runs/demos", "output directory: learner/demos is the demo store"),
    *shared_args("namespace"),
    ("agent_config", "paper", "the agent preset the demos are for (its frame stack); no network is trained"),
    *shared_args("control_hz"),
    ("episodes", "10", "demonstrations to record"),
    ("use_teleop", "true", "start the teleop node (keyboard / joystick / SpaceMouse)"),
    ("use_expert", "false", "sim: the task's scripted expert drives every episode"),
    *shared_args("realtime_ignore", "seed", "bag_dir", "label_frames_dir"),
]


def generate_launch_description():
    return launch_description("record", ARGS)
