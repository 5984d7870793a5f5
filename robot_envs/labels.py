"""Operator-labelled frames for the success classifier: a store on disk and a training command.

Layout of a label store (written by the episode node when ``label_frames_dir`` is set, one frame per camera
each time the operator labels a step through ``episode/label_success``)::

    <dir>/success/<camera>/ep<episode>_t<step>_<n>.png
    <dir>/failure/<camera>/ep<episode>_t<step>_<n>.png

PNG files (lossless RGB), each written atomically. Training (``python -m robot_envs.labels train``) fits a
:class:`robot_envs.classifier.SuccessClassifier` on one camera's frames, holding out a fraction of the
*episodes* (frames of one episode look alike: a frame-level split would overstate the accuracy) and reports
the held-out balanced accuracy; the saved classifier is what a task's ``classifier_path`` loads.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from mentor_policy.fileio import atomic_write_bytes, atomic_write_text

LABELS = ("success", "failure")
_NAME = re.compile(r"^ep(-?\d+)_t(\d+)_(\d+)\.png$")  # episode -1: labelled before the first episode


class LabelStore:
    """Write and read labelled frames (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def add(self, success: bool, camera: str, image: np.ndarray, episode_id: int, step: int) -> Path:
        """Store one ``(H, W, 3)`` uint8 RGB frame with its label; returns its path."""
        if not re.match(r"^[A-Za-z0-9_.-]+$", camera):
            raise ValueError(f"camera name {camera!r} cannot be a directory name")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"a labelled frame must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        folder = self.directory / LABELS[0 if success else 1] / camera
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob(f"ep{int(episode_id)}_t{int(step)}_*.png")))
        path = folder / f"ep{int(episode_id)}_t{int(step)}_{n}.png"
        ok, png = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
        if not ok:
            raise ValueError(f"could not encode a {image.shape} frame as PNG")
        atomic_write_bytes(path, png.tobytes())
        return path

    def frames(self, camera: str) -> dict[str, list[tuple[int, np.ndarray]]]:
        """``{"success": [(episode_id, image), ...], "failure": [...]}`` for one camera, in file-name order."""
        out: dict[str, list[tuple[int, np.ndarray]]] = {}
        for label in LABELS:
            items = []
            for path in sorted((self.directory / label / camera).glob("ep*_t*_*.png")):
                m = _NAME.match(path.name)
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if m is None or image is None:
                    continue  # not a frame of this store (or unreadable): skipped
                items.append((int(m.group(1)), image[:, :, ::-1].copy()))
            out[label] = items
        return out


def split_by_episode(items: list[tuple[int, np.ndarray]], holdout: float, seed: int
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(train, held-out) frames; whole episodes are held out (about ``holdout`` of them, at least one when
    there are two or more episodes)."""
    episodes = sorted({e for e, _ in items})
    rng = np.random.default_rng(seed)
    n_out = min(len(episodes) - 1, max(1, int(round(holdout * len(episodes))))) if len(episodes) > 1 else 0
    held = set(rng.choice(episodes, size=n_out, replace=False).tolist()) if n_out else set()
    return [im for e, im in items if e not in held], [im for e, im in items if e in held]


def train_classifier(store: LabelStore, camera: str, out: str | Path, holdout: float = 0.25, seed: int = 0,
                     train_steps: Optional[int] = None) -> dict:
    """Fit a SuccessClassifier on ``camera``'s labelled frames, save it to ``out``; returns the report."""
    from robot_envs.classifier import ClassifierConfig, SuccessClassifier

    data = store.frames(camera)
    if not data["success"] or not data["failure"]:
        raise ValueError(f"{store.directory}: camera {camera!r} needs success and failure frames, has "
                         f"{len(data['success'])} and {len(data['failure'])}")
    pos_train, pos_test = split_by_episode(data["success"], holdout, seed)
    neg_train, neg_test = split_by_episode(data["failure"], holdout, seed + 1)
    cfg = ClassifierConfig(seed=seed, **({"train_steps": int(train_steps)} if train_steps else {}))
    clf = SuccessClassifier(cfg)
    metrics = clf.fit(np.stack(pos_train), np.stack(neg_train))
    report = {"camera": camera, "labels": str(store.directory), "train_frames": [len(pos_train), len(neg_train)],
              "heldout_frames": [len(pos_test), len(neg_test)], **metrics}
    if pos_test and neg_test:
        report["heldout_balanced_accuracy"] = clf.accuracy(np.stack(pos_test), np.stack(neg_test))
    clf.save(out)
    atomic_write_text(Path(str(out) + ".json"), json.dumps(report, indent=1))
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m robot_envs.labels",
                                 description="Train the success classifier from operator-labelled frames.")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit a classifier on one camera's labelled frames, report held-out accuracy")
    t.add_argument("--labels", required=True, help="label store directory (the episode node's label_frames_dir)")
    t.add_argument("--camera", default="front", help="camera whose frames the classifier sees")
    t.add_argument("--out", required=True, help="classifier file to write (any task's classifier_path)")
    t.add_argument("--holdout", type=float, default=0.25, help="share of the episodes held out for the report")
    t.add_argument("--train-steps", type=int, default=None, help="optimiser steps (default: the classifier's)")
    t.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    report = train_classifier(LabelStore(args.labels), args.camera, args.out, args.holdout, args.seed,
                              args.train_steps)
    acc = report.get("heldout_balanced_accuracy")
    print(f"trained on {report['train_frames'][0]} success / {report['train_frames'][1]} failure frames; held-out "
          + (f"balanced accuracy {acc:.3f} on {report['heldout_frames']} frames" if acc is not None
             else "accuracy not measured (one episode per label)") + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
