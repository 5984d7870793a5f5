"""ROS 2 nodes for MENTOR."""
