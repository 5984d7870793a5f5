"""Robot, camera and task backends for MENTOR: franky (real or franky-sim), RealSense, simulated cameras."""
