"""Camera intrinsics, hand-eye, workspace and crop calibration: pure cores plus command-line front-ends."""
