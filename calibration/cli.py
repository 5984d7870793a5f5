"""Command-line front-end of the calibration tools.

    python -m calibration.cli board       --out board.png                       # printable target
    python -m calibration.cli capture     --robot-host 172.16.0.2 --out-dir calib/front
    python -m calibration.cli intrinsics  --images calib/front --camera front --out front_intrinsics.yaml
    python -m calibration.cli intrinsics  --realsense --serial 123 --camera front --out front_intrinsics.yaml
    python -m calibration.cli handeye     --samples calib/front/samples.yaml --intrinsics front_intrinsics.yaml \\
                                          --mode eye_to_hand --out front_handeye.yaml
    python -m calibration.cli workspace   --robot-host 172.16.0.2 --duration 60 --task-yaml my_task.yaml
    python -m calibration.cli crop        --image calib/front/img_000.png --rect 100,50,400,300 \\
                                          --camera front --out cameras.yaml

Progress goes to stderr, results to stdout; on a user error the exit code is 2 with a one-line message.
Samples file (written by ``capture``; image paths relative to the file)::

    type: calibration_samples
    version: 1
    samples:
      - {image: img_000.png, tcp_pose: [x, y, z, qx, qy, qz, qw]}
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from calibration.board import Board, BoardConfig
from calibration.crop import CropConfig, crop_from_points, crop_from_rect, pick_crop_interactive, write_camera_crop
from calibration.handeye import MODES, HandEyeCollector, HandEyeConfig
from calibration.intrinsics import IntrinsicsCalibConfig, calibrate_from_images, read_realsense_intrinsics
from calibration.io import (
    CalibrationFileError,
    dump_yaml,
    load_intrinsics,
    read_yaml_mapping,
    save_handeye,
    save_intrinsics,
)
from calibration.workspace import WorkspaceConfig, WorkspaceRecorder, write_workspace

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SAMPLES_TYPE = "calibration_samples"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ints(text: str, n: int, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise ValueError(f"{what} must be {n} comma-separated integers, got {text!r}") from exc
    if len(vals) != n:
        raise ValueError(f"{what} must be {n} comma-separated integers, got {text!r}")
    return vals


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB image from a file; ValueError naming the file when unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path} (missing or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _board(args) -> Board:
    return Board(BoardConfig(kind=args.board, squares_x=args.squares_x, squares_y=args.squares_y,
                             square_length=args.square_length, marker_length=args.marker_length,
                             dictionary=args.dictionary))


def _add_board_args(p: argparse.ArgumentParser) -> None:
    d = BoardConfig()
    p.add_argument("--board", choices=("charuco", "checkerboard"), default=d.kind, help="target type")
    p.add_argument("--squares-x", type=int, default=d.squares_x, help="squares along the board x axis")
    p.add_argument("--squares-y", type=int, default=d.squares_y, help="squares along the board y axis")
    p.add_argument("--square-length", type=float, default=d.square_length, help="printed square side [m]")
    p.add_argument("--marker-length", type=float, default=d.marker_length, help="printed marker side [m]")
    p.add_argument("--dictionary", default=d.dictionary, help="ArUco dictionary, e.g. DICT_5X5_100")


# ---------------------------------------------------------------------------------------------
# Samples files
# ---------------------------------------------------------------------------------------------
def load_samples(path: str | Path) -> list[tuple[Path, np.ndarray | None]]:
    """[(image path, tcp_pose (7,) or None)] from a samples file (see the module docstring)."""
    p = Path(path)
    data = read_yaml_mapping(p)
    if data.get("type") != SAMPLES_TYPE or not isinstance(data.get("samples"), list):
        raise CalibrationFileError(f"{p} is not a samples file (type: {SAMPLES_TYPE} with a 'samples' list)")
    out = []
    for i, s in enumerate(data["samples"]):
        if not isinstance(s, dict) or "image" not in s:
            raise CalibrationFileError(f"{p}: sample {i} must be a mapping with an 'image' key")
        pose = None
        if s.get("tcp_pose") is not None:
            pose = np.asarray(s["tcp_pose"], dtype=np.float64)
            if pose.shape != (7,) or not np.all(np.isfinite(pose)):
                raise CalibrationFileError(f"{p}: sample {i} tcp_pose must be 7 finite numbers, got {s['tcp_pose']}")
        out.append((p.parent / str(s["image"]), pose))
    return out


def save_samples(path: str | Path, samples: list[tuple[str, np.ndarray | None]]) -> Path:
    """Write a samples file atomically; image names relative to the file's directory."""
    rows = [{"image": str(name), "tcp_pose": None if pose is None else [float(v) for v in pose]}
            for name, pose in samples]
    return dump_yaml(path, {"type": SAMPLES_TYPE, "version": 1, "samples": rows})


# ---------------------------------------------------------------------------------------------
# Sub-commands
# ---------------------------------------------------------------------------------------------
def cmd_board(args) -> int:
    board = _board(args)
    img = board.image(args.px_per_square, args.margin_px)
    if not cv2.imwrite(str(args.out), img):
        raise OSError(f"could not write {args.out}")
    w, h = board.cfg.size_m
    _say(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]} px). Print it so that one square measures "
         f"{board.cfg.square_length * 1e3:.1f} mm (pattern {w * 1e3:.0f} x {h * 1e3:.0f} mm), then measure "
         f"and pass the real size with --square-length/--marker-length.")
    return 0


def cmd_intrinsics(args) -> int:
    if args.realsense:
        w, h = _ints(args.size, 2, "--size")
        intr = read_realsense_intrinsics(args.serial, w, h)
        _say(f"RealSense factory intrinsics for {w}x{h}")
    else:
        if args.images is None:
            raise ValueError("give --images DIR (board photos) or --realsense")
        folder = Path(args.images)
        if not folder.is_dir():
            raise ValueError(f"--images {folder} is not a directory")
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {folder}")
        _say(f"{len(files)} images in {folder}")
        cfg = IntrinsicsCalibConfig(zero_tangent=args.zero_tangent, max_rms_px=args.max_rms)
        report = calibrate_from_images(((f.name, read_rgb(f)) for f in files), _board(args), cfg, _say)
        intr = report.intrinsics
        _say(f"used {len(report.used)} of {len(files)} images, RMS reprojection error {intr.rms_px:.3f} px")
    save_intrinsics(args.out, intr, args.camera)
    print(f"fx={intr.fx:.2f} fy={intr.fy:.2f} cx={intr.cx:.2f} cy={intr.cy:.2f} "
          f"dist={np.round(intr.dist, 5).tolist()} -> {args.out}")
    return 0


def cmd_handeye(args) -> int:
    intr, camera = load_intrinsics(args.intrinsics)
    cfg = HandEyeConfig(mode=args.mode, min_samples=args.min_samples, max_reprojection_px=args.max_reproj)
    collector = HandEyeCollector(_board(args), intr, cfg)
    samples = load_samples(args.samples)
    for path, pose in samples:
        if pose is None:
            _say(f"{path.name}: skipped (no tcp_pose)")
            continue
        outcome = collector.add_sample(read_rgb(path), pose)
        _say(f"{path.name}: {'ok' if outcome.accepted else 'rejected'} ({outcome.reason})")
    result = collector.solve()
    save_handeye(args.out, result, args.camera or camera)
    s = result.summary()
    parent, child = result.camera_frames
    print(f"T_{parent}_{child} from {s['n_samples']} samples: residual translation rms "
          f"{s['translation_rms_mm']:.2f} mm (max {s['translation_max_mm']:.2f}), rotation rms "
          f"{s['rotation_rms_deg']:.3f} deg (max {s['rotation_max_deg']:.3f}) -> {args.out}")
    print(np.array2string(result.T_camera, precision=4, suppress_small=True))
    return 0


def _load_positions(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    else:
        arr = np.loadtxt(path, delimiter=",", ndmin=2)
    if arr.ndim != 2 or arr.shape[1] not in (3, 7):
        raise ValueError(f"{path} must hold an (N, 3) or (N, 7) array of positions/poses, got {arr.shape}")
    return arr


def cmd_workspace(args) -> int:
    rec = WorkspaceRecorder(WorkspaceConfig(margin_m=args.margin, min_points=args.min_points,
                                            z_floor_m=args.z_floor))
    if args.poses is not None:
        for row in _load_positions(Path(args.poses)):
            rec.add(row)
        _say(f"loaded {len(rec)} positions from {args.poses}")
    elif args.robot_host is not None:
        from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig

        robot = FrankyRobot(FrankyRobotConfig(hostname=args.robot_host, gripper_enabled=False,
                                              ignore_realtime=args.ignore_realtime))
        with robot:
            _say(f"recording for {args.duration:.0f} s: move the arm (guiding mode) through the whole workspace")
            rec.record(robot.read_state, args.duration, args.rate, _say)
    else:
        raise ValueError("give --poses FILE (.npy or .csv) or --robot-host HOST")
    lo, hi = rec.box()
    write_workspace(args.task_yaml, lo, hi)
    print(f"workspace_min={np.round(lo, 4).tolist()} workspace_max={np.round(hi, 4).tolist()} -> {args.task_yaml}")
    return 0


def cmd_crop(args) -> int:
    image = read_rgb(args.image) if args.image else None
    if image is not None:
        h, w = image.shape[:2]
    elif args.size:
        w, h = _ints(args.size, 2, "--size")
    else:
        raise ValueError("give --image FILE or --size W,H")
    cfg = CropConfig(image_width=w, image_height=h, output_size=_ints(args.output_size, 2, "--output-size"))
    if args.rect:
        crop = crop_from_rect(_ints(args.rect, 4, "--rect"), cfg)
    elif args.points:
        pts = [_ints(p, 2, "--points entry") for p in args.points.split(";") if p.strip()]
        crop = crop_from_points(pts, cfg, margin_px=args.margin)
    elif args.interactive:
        if image is None:
            raise ValueError("--interactive needs --image")
        crop = pick_crop_interactive(image, cfg)
    else:
        raise ValueError("give --rect x,y,w,h, --points 'x,y;x,y;...' or --interactive")
    write_camera_crop(args.out, args.camera, crop, cfg)
    if image is not None and args.preview:
        x, y, cw, ch = crop
        if not cv2.imwrite(str(args.preview), cv2.cvtColor(image[y:y + ch, x:x + cw], cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {args.preview}")
    print(f"crop (x, y, w, h) = {list(crop)} for camera {args.camera} -> {args.out}")
    return 0


def cmd_capture(args) -> int:
    from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig
    from robot_envs.realsense import RealSenseCamera, RealSenseCameraConfig

    w, h = _ints(args.size, 2, "--size")
    out = Path(args.out_dir)
    samples_file = out / "samples.yaml"
    samples = [(p.name, pose) for p, pose in load_samples(samples_file)] if samples_file.exists() else []
    cam_cfg = RealSenseCameraConfig(name=args.camera, serial=args.serial, width=w, height=h, crop=None,
                                    output_size=(h, w))
    robot = FrankyRobot(FrankyRobotConfig(hostname=args.robot_host, gripper_enabled=False,
                                          ignore_realtime=args.ignore_realtime))
    with RealSenseCamera(cam_cfg) as cam, robot:
        out.mkdir(parents=True, exist_ok=True)
        _say("move the arm (guiding mode), let it rest, press Enter to capture; type q + Enter to finish")
        while input().strip().lower() != "q":
            state = robot.read_state()
            if not state.ok:
                _say(f"robot reports an error, sample not taken: {state.error}")
                continue
            frame = cam.read(2.0)
            name = f"img_{len(samples):03d}.png"
            if not cv2.imwrite(str(out / name), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {out / name}")
            samples.append((name, state.ee_pose))
            save_samples(samples_file, samples)
            _say(f"{name}: tcp {np.round(state.ee_pose[:3], 4).tolist()} ({len(samples)} samples)")
    print(f"{len(samples)} samples in {samples_file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m calibration.cli", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("board", help="write a printable board image")
    _add_board_args(p)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--px-per-square", type=int, default=200, help="image pixels per square")
    p.add_argument("--margin-px", type=int, default=100, help="white margin [px]")
    p.set_defaults(func=cmd_board)

    p = sub.add_parser("capture", help="capture (image, TCP pose) samples from a RealSense and a Franka")
    p.add_argument("--robot-host", required=True, help="FCI address of the robot")
    p.add_argument("--serial", default=None, help="RealSense serial (default: the only one)")
    p.add_argument("--camera", default="front", help="camera name")
    p.add_argument("--size", default="640,480", help="stream size W,H [px]")
    p.add_argument("--out-dir", required=True, help="folder for images and samples.yaml")
    p.add_argument("--ignore-realtime", action="store_true", help="franky without a PREEMPT_RT kernel")
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("intrinsics", help="camera intrinsics from board images or RealSense factory values")
    _add_board_args(p)
    p.add_argument("--images", help="folder of board images (png/jpg) from ONE camera at ONE resolution")
    p.add_argument("--realsense", action="store_true", help="read factory intrinsics from a connected camera")
    p.add_argument("--serial", default=None, help="RealSense serial (with --realsense)")
    p.add_argument("--size", default="640,480", help="stream size W,H (with --realsense)")
    p.add_argument("--camera", required=True, help="camera name stored in the file")
    p.add_argument("--zero-tangent", action="store_true", help="fix p1 = p2 = 0")
    p.add_argument("--max-rms", type=float, default=1.0, help="fail above this RMS error [px]")
    p.add_argument("--out", required=True, help="YAML file to write")
    p.set_defaults(func=cmd_intrinsics)

    p = sub.add_parser("handeye", help="hand-eye calibration from a samples file")
    _add_board_args(p)
    p.add_argument("--samples", required=True, help="samples.yaml (images + TCP poses)")
    p.add_argument("--intrinsics", required=True, help="intrinsics YAML of the camera")
    p.add_argument("--mode", choices=MODES, required=True, help="camera fixed (eye_to_hand) or on the arm")
    p.add_argument("--camera", default=None, help="camera name (default: the intrinsics file's)")
    p.add_argument("--min-samples", type=int, default=5, help="fewest usable samples")
    p.add_argument("--max-reproj", type=float, default=1.5, help="reject samples above this board error [px]")
    p.add_argument("--out", required=True, help="YAML file to write")
    p.set_defaults(func=cmd_handeye)

    p = sub.add_parser("workspace", help="safety box from recorded TCP positions, into a task YAML")
    p.add_argument("--poses", help="(N,3)/(N,7) positions: .npy or .csv (base frame, metres)")
    p.add_argument("--robot-host", help="record live from this robot instead")
    p.add_argument("--ignore-realtime", action="store_true", help="franky without a PREEMPT_RT kernel")
    p.add_argument("--duration", type=float, default=60.0, help="recording time [s]")
    p.add_argument("--rate", type=float, default=20.0, help="sampling rate [Hz]")
    p.add_argument("--margin", type=float, default=0.02, help="margin on every side [m]")
    p.add_argument("--min-points", type=int, default=20, help="fewest positions needed")
    p.add_argument("--z-floor", type=float, default=None, help="lowest allowed workspace z [m]")
    p.add_argument("--task-yaml", required=True, help="task YAML to update (other keys kept)")
    p.set_defaults(func=cmd_workspace)

    p = sub.add_parser("crop", help="per-camera crop rectangle for the policy image")
    p.add_argument("--image", help="a full-resolution frame of the camera (png/jpg)")
    p.add_argument("--size", help="W,H of the stream when no --image is given")
    p.add_argument("--rect", help="chosen rectangle x,y,w,h [px]")
    p.add_argument("--points", help="pixels to keep in view: 'x,y;x,y;...'")
    p.add_argument("--margin", type=int, default=10, help="margin around --points [px]")
    p.add_argument("--interactive", action="store_true", help="drag a rectangle in a window (needs a display)")
    p.add_argument("--output-size", default="84,84", help="policy image H,W (sets the aspect ratio)")
    p.add_argument("--camera", required=True, help="camera name")
    p.add_argument("--out", required=True, help="camera YAML to update (other keys kept)")
    p.add_argument("--preview", help="also write the cropped image here")
    p.set_defaults(func=cmd_crop)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; returns the process exit code (0 ok, 2 user/input error)."""
    args = build_parser().parse_args(argv)
    # Our errors derive from ValueError; robot_envs' RobotError from RuntimeError. The message is
    # printed (nothing is lost: each error names its file/value) and the exit code says it failed.
    try:
        return int(args.func(args))
    except (ValueError, OSError, ImportError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
