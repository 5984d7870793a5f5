"""Accuracy benchmark on MuJoCo renderings with a known answer.

    python -m calibration.accuracy [--seeds 3] [--views 10] [--samples 12] [--json out.json]

Renders the board scene of :mod:`calibration.render` (640x480, fovy 50 deg) and reports, per seed
and as the worst case over seeds: intrinsics error (focal length %, principal point px, RMS px),
hand-eye camera-transform error for eye-to-hand and eye-in-hand (mm, deg) and the chain residuals.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from calibration.geometry import exp_so3, make_transform, transform_error  # noqa: E402
from calibration.handeye import HandEyeCollector, HandEyeConfig  # noqa: E402
from calibration.intrinsics import CameraIntrinsics, calibrate_from_images  # noqa: E402
from calibration.render import (  # noqa: E402
    BoardScene,
    BoardSceneConfig,
    look_at,
    render_eye_in_hand,
    render_eye_to_hand,
    render_intrinsic_views,
)

# Known set-ups (base frame = world frame of the scene).
T_BASE_CAMERA = look_at([1.15, 0.35, 0.75], [0.5, 0.0, 0.3])
T_TCP_BOARD = make_transform(exp_so3([0.2, -0.1, 0.4]), [-0.12, -0.09, 0.07])
T_BASE_BOARD = make_transform(np.diag([1.0, -1.0, -1.0]), [0.4, 0.12, 0.0])
T_TCP_CAMERA = make_transform(exp_so3([0.05, -0.1, 1.5]), [0.06, -0.03, 0.03])


def _hand_eye(scene: BoardScene, mode: str, data, truth: np.ndarray) -> dict[str, float]:
    intr = CameraIntrinsics(K=scene.K, dist=np.zeros(5), width=scene.cfg.width, height=scene.cfg.height)
    col = HandEyeCollector(scene.board, intr, HandEyeConfig(mode=mode))
    for img, T_base_tcp in data:
        col.add_sample(img, T_base_tcp)
    t0 = time.perf_counter()
    res = col.solve()
    dt, dr = transform_error(res.T_camera, truth)
    s = res.summary()
    return {"n_samples": s["n_samples"], "camera_err_mm": 1e3 * dt, "camera_err_deg": float(np.rad2deg(dr)),
            "residual_rms_mm": s["translation_rms_mm"], "residual_rms_deg": s["rotation_rms_deg"],
            "solve_s": time.perf_counter() - t0}


def run_seed(scene: BoardScene, seed: int, n_views: int, n_samples: int) -> dict[str, dict[str, float]]:
    """All three checks for one seed."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    views = render_intrinsic_views(scene, n_views, rng)
    render_s = (time.perf_counter() - t0) / n_views
    rep = calibrate_from_images(((f"v{i}", img) for i, (img, _) in enumerate(views)), scene.board)
    K, Ke = scene.K, rep.intrinsics.K
    out = {"intrinsics": {"f_err_pct": float(100 * max(abs(Ke[0, 0] / K[0, 0] - 1), abs(Ke[1, 1] / K[1, 1] - 1))),
                          "pp_err_px": float(np.hypot(Ke[0, 2] - K[0, 2], Ke[1, 2] - K[1, 2])),
                          "rms_px": float(rep.intrinsics.rms_px), "render_s_per_view": render_s}}
    out["eye_to_hand"] = _hand_eye(scene, "eye_to_hand",
                                   render_eye_to_hand(scene, n_samples, rng, T_BASE_CAMERA, T_TCP_BOARD), T_BASE_CAMERA)
    out["eye_in_hand"] = _hand_eye(scene, "eye_in_hand",
                                   render_eye_in_hand(scene, n_samples, rng, T_BASE_BOARD, T_TCP_CAMERA), T_TCP_CAMERA)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="number of random data sets")
    ap.add_argument("--views", type=int, default=10, help="intrinsics views per seed")
    ap.add_argument("--samples", type=int, default=12, help="hand-eye samples per seed and mode")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    results = {}
    with BoardScene(BoardSceneConfig()) as scene:
        for seed in range(args.seeds):
            results[seed] = run_seed(scene, seed, args.views, args.samples)
            r = results[seed]
            print(f"seed {seed}: intrinsics f {r['intrinsics']['f_err_pct']:.3f} %, pp "
                  f"{r['intrinsics']['pp_err_px']:.2f} px, rms {r['intrinsics']['rms_px']:.3f} px | "
                  f"eye_to_hand {r['eye_to_hand']['camera_err_mm']:.2f} mm {r['eye_to_hand']['camera_err_deg']:.3f} deg"
                  f" | eye_in_hand {r['eye_in_hand']['camera_err_mm']:.2f} mm "
                  f"{r['eye_in_hand']['camera_err_deg']:.3f} deg", flush=True)
    worst = {k: {m: max(results[s][k][m] for s in results) for m in results[0][k]} for k in results[0]}
    print("worst over seeds:", json.dumps(worst, indent=1))
    if args.json:
        from calibration.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"per_seed": results, "worst": worst}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
