# MENTOR on ROS 2 Jazzy: the robot PC / learner image.
#
# Build (from the repository root):
#   docker build -t mentor:jazzy .
#   docker build -t mentor:jazzy-cuda --build-arg TORCH_SPEC="torch==2.13.0" .   # CUDA build of torch (x86_64)
# Run the simulated graph (no hardware):
#   docker run --rm -it --network host --ipc host -v $PWD/runs:/runs mentor:jazzy \
#     ros2 launch mentor train_real.launch.py use_sim:=true task:=reach run_dir:=/runs/reach_sim
# Run on a real Franka + RealSense cameras (see README "Real-robot guide"):
#   docker run --rm -it --network host --ipc host --privileged \
#     --cap-add SYS_NICE --ulimit rtprio=99 --ulimit memlock=-1 \
#     -v /dev:/dev -v $PWD/runs:/runs -v $PWD/my_task.yaml:/config/task.yaml:ro mentor:jazzy \
#     ros2 launch mentor train_real.launch.py robot_ip:=172.16.0.2 task:=peg_insertion_real \
#       task_config:=/config/task.yaml camera_serials:="['123456789012']" run_dir:=/runs/peg
#
# Notes
# - Host networking (--network host) keeps DDS discovery simple across the robot PC and a learner box; both
#   must use the same ROS_DOMAIN_ID. --ipc host lets Fast DDS use shared memory between containers.
# - RealSense: install librealsense's udev rules on the HOST (99-realsense-libusb.rules) and pass /dev
#   (or the specific /dev/bus/usb device) into the container; pyrealsense2 talks to the device over libusb.
# - Franka's FCI needs a PREEMPT_RT kernel on the host for 1 kHz control; the container inherits the host
#   kernel and needs rtprio/memlock limits (above). Without an RT kernel set `realtime_ignore:=true`
#   (only acceptable for the simulator or cautious tests).
# - GPU learner: run with `--gpus all` (NVIDIA container toolkit) and build with a CUDA torch (TORCH_SPEC
#   above); the agent picks CUDA automatically when torch sees a device.
FROM ros:jazzy-ros-base-noble

ARG TORCH_SPEC="torch==2.13.0"
# Extra pip options for torch, e.g. --build-arg TORCH_PIP_ARGS="--index-url <your CPU wheel index>".
ARG TORCH_PIP_ARGS=""

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    MUJOCO_GL=egl \
    PYOPENGL_PLATFORM=egl \
    RMW_IMPLEMENTATION=rmw_fastrtps_cpp

# System packages: colcon, EGL/Mesa for headless MuJoCo rendering, libusb for RealSense.
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3-pip python3-venv python3-colcon-common-extensions \
        ros-jazzy-rmw-fastrtps-cpp \
        libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0 libusb-1.0-0 \
    && rm -rf /var/lib/apt/lists/*

# A virtualenv that still sees the distro's rclpy and message packages.
RUN python3 -m venv --system-site-packages /opt/mentor-venv
ENV PATH=/opt/mentor-venv/bin:$PATH

WORKDIR /opt/mentor
COPY pyproject.toml README.md ./
COPY docker/constraints.txt ./docker/constraints.txt
COPY mentor_policy ./mentor_policy
COPY robot_envs ./robot_envs
COPY calibration ./calibration
RUN pip install --upgrade pip \
    && pip install ${TORCH_PIP_ARGS} "${TORCH_SPEC}" \
    && pip install -c docker/constraints.txt ".[sim,robot,dev,data]"

# The ament_python package; the top-level launch/ directory is installed into its share/ by setup.py.
COPY launch ./launch
COPY ros2_ws ./ros2_ws
RUN . /opt/ros/jazzy/setup.sh \
    && cd ros2_ws \
    && colcon build --symlink-install --event-handlers console_direct+

COPY docker/entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
CMD ["ros2", "launch", "mentor", "train_real.launch.py", "use_sim:=true", "task:=reach", "run_dir:=/runs/reach_sim"]
