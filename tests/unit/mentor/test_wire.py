"""Wire helpers (image/action/pose/bytes <-> messages), QoS profiles, parameters -> dataclasses."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import Float32MultiArray, String  # noqa: E402

from mentor import qos, wire  # noqa: E402
from mentor.params import config_to_params, declare_config, parse_overrides  # noqa: E402


def test_image_round_trip_rgb_and_bgr():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    msg = wire.image_to_msg(img, 12.25, "cam_optical")
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 6, 5, 15)
    assert msg.header.frame_id == "cam_optical"
    assert wire.seconds_from_stamp(msg.header.stamp) == pytest.approx(12.25)
    np.testing.assert_array_equal(wire.msg_to_image(msg, expected_hw=(6, 5)), img)
    msg.encoding = "bgr8"
    np.testing.assert_array_equal(wire.msg_to_image(msg), img[:, :, ::-1])


def test_image_with_row_padding():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = wire.image_to_msg(img, 0.0, "c")
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = img.reshape(2, 9)
    msg.step, msg.data = 12, padded.tobytes()
    np.testing.assert_array_equal(wire.msg_to_image(msg), img)


@pytest.mark.parametrize("change, match", [
    (dict(encoding="mono8"), "encoding"),
    (dict(height=7), "bytes"),
    (dict(step=2), "header invalid"),
])
def test_bad_images_are_rejected_clearly(change, match):
    msg = wire.image_to_msg(np.zeros((6, 5, 3), np.uint8), 0.0, "c")
    for k, v in change.items():
        setattr(msg, k, v)
    with pytest.raises(wire.WireError, match=match):
        wire.msg_to_image(msg)


def test_image_of_unexpected_size_and_bad_arrays():
    msg = wire.image_to_msg(np.zeros((6, 5, 3), np.uint8), 0.0, "c")
    with pytest.raises(wire.WireError, match="differs from the expected 84x84"):
        wire.msg_to_image(msg, expected_hw=(84, 84))
    with pytest.raises(wire.WireError, match="uint8"):
        wire.image_to_msg(np.zeros((6, 5, 3), np.float32), 0.0, "c")
    with pytest.raises(wire.WireError, match="uint8"):
        wire.image_to_msg(np.zeros((6, 5), np.uint8), 0.0, "c")


def test_actions_validated():
    msg = wire.array_to_msg(np.array([0.5, -1.0, 2.0]))
    np.testing.assert_allclose(wire.msg_to_action(msg, 3), [0.5, -1.0, 2.0])  # clipping is the robot's job
    with pytest.raises(wire.WireError, match="3 values, expected 4"):
        wire.msg_to_action(msg, 4)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(wire.WireError, match="NaN/inf"):
            wire.msg_to_action(Float32MultiArray(data=[0.0, bad, 0.0]), 3)


def test_pose_bytes_json_round_trips():
    pose = np.array([0.4, -0.1, 0.3, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(wire.msg_to_pose(wire.pose_to_msg(pose, 1.0, "base")), pose)
    with pytest.raises(wire.WireError, match="7 values"):
        wire.pose_to_msg(np.zeros(6), 0.0, "base")
    payload = bytes(range(256)) * 10
    assert wire.msg_to_bytes(wire.bytes_to_msg(payload)) == payload
    assert wire.msg_to_json(wire.json_to_msg({"robot": 3})) == {"robot": 3}
    with pytest.raises(wire.WireError, match="not JSON"):
        wire.msg_to_json(String(data="{oops"))
    with pytest.raises(wire.WireError, match="JSON object"):
        wire.msg_to_json(String(data="[1, 2]"))


def test_qos_profiles():
    assert qos.TRANSITIONS.reliability == ReliabilityPolicy.RELIABLE and qos.TRANSITIONS.depth == 1000
    assert qos.LATCHED.durability == DurabilityPolicy.TRANSIENT_LOCAL and qos.LATCHED.depth == 1
    assert qos.LATCHED.reliability == ReliabilityPolicy.RELIABLE
    assert qos.SENSOR.reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos.COMMAND.depth == 1


@dataclass
class _Cfg:
    rate: float = field(default=10.0, metadata={"help": "a rate [Hz]"})
    name: str = field(default="x", metadata={"help": "a name"})
    flags: list[int] = field(default_factory=lambda: [1, 2], metadata={"help": "ints"})
    box: tuple[float, float] = field(default=(0.0, 1.0), metadata={"help": "a pair"})
    maybe: float | None = field(default=None, metadata={"help": "optional"})
    enabled: bool = field(default=True, metadata={"help": "a switch"})

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")


@pytest.fixture()
def ros_context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def _node(ctx, overrides: dict):
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    return Node("param_test", context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])


def test_declare_config_fills_dataclass_with_descriptions(ros_context):
    node = _node(ros_context, {"rate": 20, "flags": [3], "box": [0.5, 2.0], "maybe": 1.5})
    try:
        cfg = declare_config(node, _Cfg)
        assert cfg == _Cfg(rate=20.0, name="x", flags=[3], box=(0.5, 2.0), maybe=1.5, enabled=True)
        assert isinstance(cfg.rate, float) and isinstance(cfg.box, tuple)
        assert node.describe_parameter("rate").description == "a rate [Hz]"
        assert config_to_params(cfg) == {"rate": 20.0, "name": "x", "flags": [3], "box": [0.5, 2.0], "maybe": 1.5,
                                         "enabled": True}
    finally:
        node.destroy_node()


def test_declare_config_prefix_overrides_and_validation(ros_context):
    node = _node(ros_context, {"lib.name": "from_param"})
    try:
        cfg = declare_config(node, _Cfg, prefix="lib.", overrides={"name": "computed", "rate": 5.0})
        assert (cfg.name, cfg.rate, cfg.maybe) == ("from_param", 5.0, None)  # parameters win over overrides
    finally:
        node.destroy_node()
    node = _node(ros_context, {"rate": -1.0})
    try:
        with pytest.raises(ValueError, match="rate must be > 0"):
            declare_config(node, _Cfg)
    finally:
        node.destroy_node()


def test_parse_overrides_is_safe():
    assert parse_overrides("") == {}
    assert parse_overrides("{perturb_interval: 5, topk: 2}") == {"perturb_interval": 5, "topk": 2}
    with pytest.raises(ValueError, match="mapping"):
        parse_overrides("[1, 2]")
    with pytest.raises(ValueError, match="not valid YAML"):
        parse_overrides("{a: [")
    with pytest.raises(ValueError):
        parse_overrides("!!python/object/apply:os.system ['true']")


def test_json_messages_are_checked_against_their_schema():
    good = {"episode_id": 3, "phase": "RUNNING", "step": 7, "return": 1.5, "success": False}
    assert wire.msg_to_json(wire.json_to_msg(good), wire.EPISODE_STATUS) == good
    for bad, match in (({k: v for k, v in good.items() if k != "episode_id"}, "missing field 'episode_id'"),
                       ({**good, "episode_id": None}, "'episode_id' must be an integer"),
                       ({**good, "episode_id": True}, "'episode_id' must be an integer"),
                       ({**good, "episode_id": -1}, "must be >= 0"),
                       ({**good, "phase": "FLYING"}, "'phase' must be one of"),
                       ({**good, "return": "1.5"}, "'return' must be a finite number"),
                       ({**good, "success": 1}, "'success' must be true/false")):
        with pytest.raises(wire.WireError, match=match):
            wire.msg_to_json(wire.json_to_msg(bad), wire.EPISODE_STATUS)
    with pytest.raises(wire.WireError, match="finite number"):
        wire.msg_to_json(String(data='{"episode_id": 1, "steps": 2, "return": NaN, "success": true}'),
                         wire.EPISODE_SUMMARY)
    assert wire.msg_to_json(wire.json_to_msg({"robot": 4, "arm2": 0}), wire.LEARNER_ACK) == {"robot": 4, "arm2": 0}
    with pytest.raises(wire.WireError, match="value of 'robot' must be an integer"):
        wire.msg_to_json(wire.json_to_msg({"robot": "4"}), wire.LEARNER_ACK)
    with pytest.raises(wire.WireError, match="not JSON"):
        wire.msg_to_json(String(data="[" * 100_000), wire.LEARNER_ACK)
