#!/usr/bin/env bash
# Source ROS 2 Jazzy and the built mentor workspace, then run the given command.
set -e
source /opt/ros/jazzy/setup.bash
source /opt/mentor/ros2_ws/install/setup.bash
exec "$@"
