"""robot_envs.labels: labelled frames on disk, an episode-level held-out split, and classifier training."""
import json

import numpy as np
import pytest

from robot_envs.labels import LabelStore, main, split_by_episode, train_classifier


def _frame(colour, rng):
    img = np.zeros((48, 48, 3), np.uint8)
    img[..., colour] = 200
    return np.clip(img.astype(int) + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)


def _store(tmp_path):
    rng = np.random.default_rng(0)
    store = LabelStore(tmp_path / "labels")
    for ep in range(6):  # success frames are red, failures blue
        for t in range(3):
            store.add(True, "front", _frame(0, rng), ep, t)
            store.add(False, "front", _frame(2, rng), ep, t + 10)
    return store


def test_frames_round_trip_losslessly_and_hold_their_episode(tmp_path):
    store = LabelStore(tmp_path)
    img = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = store.add(True, "wrist", img, episode_id=4, step=7)
    store.add(True, "wrist", img, episode_id=4, step=7)  # the same step labelled twice: a second file
    assert path.name == "ep4_t7_0.png" and path.parent.name == "wrist" and path.parent.parent.name == "success"
    frames = store.frames("wrist")
    assert [e for e, _ in frames["success"]] == [4, 4] and frames["failure"] == []
    np.testing.assert_array_equal(frames["success"][0][1], img)
    with pytest.raises(ValueError, match="uint8"):
        store.add(False, "wrist", img.astype(np.float32), 0, 0)
    with pytest.raises(ValueError, match="directory name"):
        store.add(False, "../up", img, 0, 0)


def test_the_held_out_split_keeps_episodes_whole():
    items = [(e, np.full((2, 2, 3), e, np.uint8)) for e in range(5) for _ in range(3)]
    train, held = split_by_episode(items, holdout=0.4, seed=0)
    held_eps = {int(im[0, 0, 0]) for im in held}
    assert len(held_eps) == 2 and not held_eps & {int(im[0, 0, 0]) for im in train} and len(train) + len(held) == 15
    assert split_by_episode(items[:3], 0.5, 0)[1] == []  # one episode: nothing to hold out


def test_training_reports_held_out_accuracy_and_writes_a_loadable_classifier(tmp_path, capsys):
    from robot_envs.classifier import SuccessClassifier
    store = _store(tmp_path)
    report = train_classifier(store, "front", tmp_path / "clf.pt", holdout=0.34, train_steps=80)
    assert report["heldout_frames"] == [6, 6] and report["heldout_balanced_accuracy"] >= 0.9
    assert json.loads((tmp_path / "clf.pt.json").read_text())["camera"] == "front"
    clf = SuccessClassifier.load(tmp_path / "clf.pt")
    rng = np.random.default_rng(5)
    assert clf.predict_success(_frame(0, rng)) and not clf.predict_success(_frame(2, rng))
    argv = ["train", "--labels", str(store.directory), "--out", str(tmp_path / "c2.pt"), "--train-steps", "20"]
    assert main(argv) == 0
    assert "held-out balanced accuracy" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs success and failure"):
        train_classifier(store, "side", tmp_path / "x.pt")
