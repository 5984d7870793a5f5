"""Camera intrinsics, hand-eye, workspace and crop calibration: pure cores plus command-line front-ends.

Modules: ``board`` (ChArUco/checkerboard targets), ``intrinsics`` (RealSense factory values, OpenCV
estimate), ``handeye`` (eye-to-hand / eye-in-hand solver and ``HandEyeCollector``), ``workspace``
(safety box from recorded TCP positions), ``crop`` (per-camera crop picker), ``io`` (YAML files),
``geometry`` (rigid transforms), ``render`` (MuJoCo test scenes), ``accuracy`` (benchmark), ``cli``.
See docs/calibration.md. Never imports rclpy.
"""
