"""mentor_policy.mixed_replay: interventions reach the demo buffer, batches mix at the configured ratio."""
import numpy as np
import pytest

from mentor_policy.mixed_replay import MixedReplay
from mentor_policy.replay import ReplayBuffer, ReplayConfig, ReplayError
from mentor_policy.specs import EnvSpec

SPEC = EnvSpec(3, (16, 16), 2, 2)


def _episode(value: float, n: int = 6, intervention_at=None) -> dict:
    iv = np.zeros(n + 1, bool)
    if intervention_at is not None:
        iv[intervention_at] = True
    return {"image": np.full((n + 1, 3, 16, 16), int(value), np.uint8),
            "proprio": np.full((n + 1, 2), value, np.float32), "action": np.zeros((n + 1, 2), np.float32),
            "reward": np.full(n + 1, value, np.float32), "discount": np.ones(n + 1, np.float32), "intervention": iv}


def _mixed(tmp_path, ratio=0.5, demos=True):
    cfg = ReplayConfig(capacity=1000, frame_stack=1, nstep=1, batch_size=8, fsync=False)
    return MixedReplay(ReplayBuffer(tmp_path / "online", cfg, SPEC),
                       ReplayBuffer(tmp_path / "demos", cfg, SPEC) if demos else None, ratio)


def test_interventions_go_to_both_buffers_and_batches_mix_at_the_ratio(tmp_path):
    mixed = _mixed(tmp_path, ratio=0.25)
    assert not mixed.add_episode(_episode(1.0), key="ep1")  # autonomous: online only
    assert mixed.add_episode(_episode(2.0, intervention_at=3), key="ep2")  # a human drove: both buffers
    mixed.add_demo(_episode(9.0), key="demo0")
    assert mixed.online.num_transitions == 12 and mixed.demos.num_transitions == 12
    batch = mixed.sample(8)
    assert batch["image"].shape == (8, 3, 16, 16) and batch["from_demo"].tolist() == [False] * 6 + [True] * 2
    assert set(batch["reward"][batch["from_demo"]].tolist()) <= {2.0, 9.0}
    assert set(batch["reward"][~batch["from_demo"]].tolist()) <= {1.0, 2.0}
    mixed.add_episode(_episode(2.0, intervention_at=3), key="ep2")  # a retry after a crash adds nothing
    assert mixed.online.num_transitions == 12 and mixed.demos.num_transitions == 12


def test_demos_alone_fill_the_batch_before_online_data_and_ratio_zero_is_plain_replay(tmp_path):
    mixed = _mixed(tmp_path, ratio=0.5)
    mixed.add_demo(_episode(9.0), key="demo0")
    assert mixed.sample(4)["from_demo"].all()
    plain = _mixed(tmp_path / "plain", ratio=0.0, demos=False)
    plain.add_episode(_episode(1.0, intervention_at=2), key="ep")
    assert not plain.sample(4)["from_demo"].any()
    with pytest.raises(ReplayError, match="no demonstration buffer"):
        plain.add_demo(_episode(9.0))
    with pytest.raises(ValueError, match="demo_ratio"):
        _mixed(tmp_path / "bad", ratio=1.5)
