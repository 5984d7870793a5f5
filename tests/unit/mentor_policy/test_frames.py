"""mentor_policy.frames: the one frame-stacking rule in its online and batch forms."""
import numpy as np
import pytest

from mentor_policy.frames import FrameStacker, stack_episode, stack_indices


def _frames(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 3, 2, 2), np.uint8)  # frame t is all t


def test_online_and_batch_stacking_agree_and_repeat_the_first_frame():
    frames = _frames(6)
    batch = stack_episode(frames, 3)
    stacker = FrameStacker(3)
    online = [stacker.reset(frames[0])] + [stacker.push(f) for f in frames[1:]]
    np.testing.assert_array_equal(np.stack(online), batch)
    assert batch.shape == (6, 9, 2, 2)
    assert [int(batch[2, c * 3, 0, 0]) for c in range(3)] == [0, 1, 2]  # oldest first
    assert [int(batch[0, c * 3, 0, 0]) for c in range(3)] == [0, 0, 0]  # step 0 repeated before the start
    np.testing.assert_array_equal(stack_indices(np.array([0, 1, 4]), 3), [[0, 0, 0], [0, 0, 1], [2, 3, 4]])


def test_stacker_rejects_bad_sizes_and_resets_per_episode():
    with pytest.raises(ValueError, match="frame_stack"):
        FrameStacker(0)
    stacker = FrameStacker(2)
    stacker.reset(_frames(1)[0])
    with pytest.raises(ValueError, match="differs"):
        stacker.push(np.zeros((3, 4, 4), np.uint8))
    again = stacker.reset(np.full((3, 2, 2), 9, np.uint8))
    assert again.shape == (6, 2, 2) and int(again.min()) == 9  # nothing of the previous episode left
