"""MENTOR on ROS 2: thin nodes over mentor_policy / robot_envs, the graph description and the runner.

See docs/ros_graph.md for nodes, topics, parameters, the episode lifecycle and the loss-free
transition transport.
"""
