"""Encoder, augmentation, critic and value predictor shapes and behaviour."""
import pytest
import torch
import torch.nn.functional as F

from mentor_policy.augment import random_shift
from mentor_policy.networks import Actor, Critic, Encoder, ValuePredictor


def test_encoder_shapes_and_preprocessing():
    enc = Encoder(9, (84, 84), 32)
    assert enc.repr_dim == 32 * 35 * 35
    img = torch.randint(0, 256, (2, 9, 84, 84), dtype=torch.uint8)
    out = enc(img)
    assert out.shape == (2, enc.repr_dim)
    # preprocessing x/255 - 0.5 happens inside: same result from the float image in [0, 255]
    assert torch.allclose(out, enc(img.float()))
    manual = enc.convs(img.float() / 255.0 - 0.5).permute(0, 2, 3, 1).flatten(1)
    assert torch.allclose(out, manual)


def test_encoder_multi_camera_channels():
    enc = Encoder(3 * 3 * 2, (64, 48), 8)  # 2 cameras, frame stack 3
    assert enc(torch.zeros(1, 18, 64, 48, dtype=torch.uint8)).shape == (1, enc.repr_dim)


def test_channels_last_matches_contiguous():
    enc = Encoder(9, (32, 32), 8)
    img = torch.randint(0, 256, (3, 9, 32, 32), dtype=torch.uint8)
    ref = enc(img)
    enc.to(memory_format=torch.channels_last)
    out = enc(img.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(ref, out, atol=1e-5)


def _reference_shift(x, pad, shifts):
    padded = F.pad(x.float(), (pad, pad, pad, pad), mode="replicate")
    h, w = x.shape[-2:]
    return torch.stack([padded[i, :, sy:sy + h, sx:sx + w] for i, (sy, sx) in enumerate(shifts)]).to(x.dtype)


def test_random_shift_equals_pad_and_crop():
    x = torch.randint(0, 256, (16, 6, 20, 24), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(3)
    out = random_shift(x, 4, gen)
    shifts = torch.randint(0, 9, (16, 2), generator=torch.Generator().manual_seed(3)).tolist()  # pad + offset
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert torch.equal(out, _reference_shift(x, 4, shifts))
    # shifts really vary (not all identity)
    assert any(s != [4, 4] for s in shifts)
    cl = random_shift(x, 4, torch.Generator().manual_seed(3), channels_last=True)
    assert torch.equal(cl, out) and cl.is_contiguous(memory_format=torch.channels_last)


def test_random_shift_float_and_zero_pad():
    x = torch.rand(4, 3, 16, 16)
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    shifts = torch.randint(0, 5, (4, 2), generator=torch.Generator().manual_seed(0)).tolist()
    assert torch.equal(out, _reference_shift(x, 2, shifts))
    assert random_shift(x, 0) is x


def test_critic_value_and_mlp_actor_shapes():
    critic = Critic(40, 0, 3, 16, 32)
    q1, q2 = critic(torch.randn(5, 40), torch.rand(5, 3) * 2 - 1)
    assert q1.shape == q2.shape == (5, 1) and not torch.equal(q1, q2)
    assert ValuePredictor(40, 0, 16, 32)(torch.randn(5, 40)).shape == (5, 1)
    actor = Actor(40, 0, 3, 16, 32, use_moe=False)
    acts = {}
    mu, routing = actor(torch.randn(5, 40), acts=acts)
    assert mu.shape == (5, 3) and routing is None and mu.abs().max() < 1
    assert set(acts) == {"trunk", "fc1", "fc2", "out"}
    assert acts["fc1"].shape == (1, 5, 32)


def test_spatial_softmax_head_returns_the_image_coordinates_of_a_peak():
    from mentor_policy.networks import Encoder
    enc = Encoder(3, (32, 32), channels=2, head="spatial_softmax", keypoints=2)
    h, w = enc.conv_hw
    assert enc.repr_dim == 4 and enc(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)).shape == (1, 4)
    peak = torch.zeros(1, 2, h, w)
    peak[0, 0, 2, w - 1] = 1.0  # channel 0: row 2, last column; channel 1: flat
    with torch.no_grad():
        enc.keypoints.weight.copy_(torch.eye(2).reshape(2, 2, 1, 1) * 100.0)
        enc.keypoints.bias.zero_()
    enc.convs = torch.nn.Sequential()  # feed the map directly (the head is what is tested)
    out = enc(peak * 255.0 + 127.5)  # the encoder's x / 255 - 0.5 gives back `peak`
    x0, y0, x1, y1 = out[0].tolist()
    assert x0 == pytest.approx(1.0, abs=1e-3) and y0 == pytest.approx(-1 + 4 / (h - 1), abs=1e-3)
    assert x1 == pytest.approx(0.0, abs=1e-5) and y1 == pytest.approx(0.0, abs=1e-5)  # flat map: the centre
    with pytest.raises(ValueError, match="encoder head"):
        Encoder(3, (32, 32), head="pooling")


@pytest.mark.parametrize("channels_last", [False, True])
def test_random_shift_kernels_agree(channels_last):
    """The CPU window-copy kernel and the gather kernel (used on other devices) give the same images."""
    from mentor_policy.augment import _shift_by_gather, _shift_by_windows
    x = torch.randint(0, 256, (32, 6, 21, 17), dtype=torch.uint8)
    shift = torch.randint(0, 9, (32, 2), generator=torch.Generator().manual_seed(1)) - 4
    a, b = _shift_by_windows(x, shift, 4, channels_last), _shift_by_gather(x, shift, channels_last)
    assert torch.equal(a, b) and torch.equal(a, _reference_shift(x, 4, (shift + 4).tolist()))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert a.is_contiguous(memory_format=fmt) and b.is_contiguous(memory_format=fmt)


def test_encoder_strides_set_the_map_size_and_travel_with_the_weights():
    enc = Encoder(6, (84, 84), 8, head="spatial_softmax", keypoints=4, strides=(2, 2, 1, 1))
    assert enc.conv_hw == (16, 16) and [c.stride for c in enc.convs if isinstance(c, torch.nn.Conv2d)] == [
        (2, 2), (2, 2), (1, 1), (1, 1)]
    assert Encoder(6, (84, 84), 8).conv_hw == (35, 35)  # DrQ-v2's default
    assert enc.state_dict()["conv_strides"].tolist() == [2, 2, 1, 1]
    # a keypoint head's shapes are the same for any strides: loading weights of other strides is refused
    other = Encoder(6, (84, 84), 8, head="spatial_softmax", keypoints=4)
    with pytest.raises(ValueError, match="conv strides"):
        other.load_state_dict(enc.state_dict())
    for bad in [(2, 1, 1), (3, 1, 1, 1), (2, 0, 1, 1)]:
        with pytest.raises(ValueError, match="strides"):
            Encoder(6, (84, 84), 8, strides=bad)
    with pytest.raises(ValueError, match="too small"):
        Encoder(3, (24, 24), 8, strides=(2, 2, 2, 2))
