"""Success classifier: trains on synthetic labelled frames, generalises to held-out frames, files round-trip."""
import cv2
import numpy as np
import pytest

from robot_envs.classifier import ClassifierConfig, ClassifierError, SuccessClassifier
from robot_envs.robot import RobotState
from robot_envs.tasks import RewardContext, get_task

GOAL = (40, 24)  # goal disc centre (u, v) in a 64x48 frame


def frame(rng, success: bool) -> np.ndarray:
    """A noisy table with a green goal disc; a red object inside it (success) or elsewhere (failure)."""
    img = rng.integers(60, 110, (48, 64, 3), dtype=np.uint8)
    img[..., 2] = np.clip(img[..., 2].astype(int) + 60, 0, 255)  # bluish floor
    cv2.circle(img, GOAL, 9, (30, 200, 40), -1)
    if success:
        ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(0, 4)
    else:
        ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(13, 30)
    u = int(np.clip(GOAL[0] + rad * np.cos(ang), 4, 59))
    v = int(np.clip(GOAL[1] + rad * np.sin(ang), 4, 43))
    cv2.circle(img, (u, v), 4, (220, 30, 30), -1)
    return img


def dataset(seed, n_pos, n_neg):
    rng = np.random.default_rng(seed)
    return np.stack([frame(rng, True) for _ in range(n_pos)]), np.stack([frame(rng, False) for _ in range(n_neg)])


TINY = dict(image_size=(32, 32), channels=(16, 32), hidden=32, train_steps=100, batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def trained():
    pos, neg = dataset(0, 60, 150)  # class imbalance as with real operator labels
    clf = SuccessClassifier(ClassifierConfig(**TINY))
    metrics = clf.fit(pos, neg)
    return clf, metrics


def test_heldout_accuracy_well_above_chance(trained):
    clf, metrics = trained
    assert metrics["train_accuracy"] > 0.9
    pos, neg = dataset(1, 100, 100)
    acc = clf.accuracy(pos, neg)
    assert acc >= 0.85, f"held-out balanced accuracy {acc:.3f}"
    # at the deployment threshold 0.85 false positives must stay rare
    assert float(np.mean(clf.predict(neg) >= 0.85)) < 0.1


def test_predict_shapes(trained):
    clf, _ = trained
    pos, _ = dataset(2, 3, 1)
    p = clf.predict(pos[0])
    assert isinstance(p, float) and 0.0 <= p <= 1.0
    batch = clf.predict(pos)
    assert batch.shape == (3,)
    assert isinstance(clf.predict_success(pos[0]), bool)
    big = cv2.resize(pos[0], (128, 96))  # other input sizes are resized
    assert 0.0 <= clf.predict(big) <= 1.0
    with pytest.raises(ClassifierError, match="uint8"):
        clf.predict(pos[0].astype(np.float32))


def test_save_load_round_trip_and_classifier_success_on_any_task(trained, tmp_path):
    clf, _ = trained
    path = clf.save(tmp_path / "clf" / "success.pt")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    again = SuccessClassifier.load(path)
    pos, neg = dataset(3, 5, 5)
    both = np.concatenate([pos, neg])
    np.testing.assert_allclose(again.predict(both), clf.predict(both), atol=1e-6)
    assert again.cfg.threshold == 0.85

    st = RobotState(stamp=0.0, ee_pose=[0.5, 0, 0.2, 1, 0, 0, 0], joint_positions=np.zeros(7), gripper_width=0.0)
    for name in ("cable_routing_real", "reach"):  # any task: a real one, and a sim one whose own reward is dense
        task = get_task(name, classifier_path=str(path), classifier_threshold=0.5)
        assert task.needs_images
        outcomes = [task.outcome(RewardContext(st, images={"front": im})) for im in [*pos, *neg]]
        hits, misses = [ok for _, ok in outcomes[:5]], [ok for _, ok in outcomes[5:]]
        assert sum(hits) >= 4 and sum(misses) <= 1
        bonus = task.cfg.success_bonus
        assert all(r == (1.0 + bonus if ok else 0.0) for r, ok in outcomes)  # sparse: the classifier's verdict
        if name == "cable_routing_real":  # with a label the task's own reward decides: here, the label
            assert task.outcome(RewardContext(st, images={"front": neg[0]}, human_label=True))[1]
        with pytest.raises(KeyError, match="needs camera 'front'"):
            task.outcome(RewardContext(st, images={"side": pos[0]}))
    plain = get_task("reach")
    assert not plain.needs_images
    ctx = RewardContext(st, object_poses={"target": np.array([0.5, 0.05, 0.2, 0, 0, 0, 1.0])})
    assert plain.outcome(ctx) == plain.reward(ctx)  # without a classifier: the task's own reward
    with pytest.raises(ValueError, match="classifier_threshold"):
        get_task("reach", classifier_path=str(path), classifier_threshold=1.5)
    with pytest.raises(ClassifierError, match="not found"):
        get_task("reach", classifier_path=str(tmp_path / "missing.pt"))


def test_corrupt_and_foreign_files_fail_clearly(tmp_path):
    import torch
    with pytest.raises(ClassifierError, match="not found"):
        SuccessClassifier.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ClassifierError, match="corrupt"):
        SuccessClassifier.load(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ClassifierError, match="not a success-classifier"):
        SuccessClassifier.load(foreign)
    clf = SuccessClassifier(ClassifierConfig(**TINY))
    good = clf.save(tmp_path / "good.pt")
    payload = torch.load(good, weights_only=True)
    payload["config"]["hidden"] = 8  # weights no longer fit the network
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ClassifierError, match="does not match"):
        SuccessClassifier.load(tmp_path / "mismatch.pt")


def test_training_input_validation():
    clf = SuccessClassifier(ClassifierConfig(**{**TINY, "train_steps": 1}))
    pos, _ = dataset(4, 2, 1)
    with pytest.raises(ClassifierError, match="uint8"):
        clf.fit(pos, np.zeros((0, 48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        ClassifierConfig(threshold=1.5)
