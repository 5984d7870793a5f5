"""MCAP files as ros2 bag writes them: schemas from the .msg files, CDR messages, a killed writer's file."""
from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import String

from mentor import wire
from mentor.bag import BagError, McapBag, message_definition, read_complete_chunks, repair, ros_type_name


def test_message_definitions_carry_every_type_they_use():
    text = message_definition("sensor_msgs/msg/Image")
    assert "uint32 height" in text and "string encoding" in text
    assert [line for line in text.splitlines() if line.startswith("MSG: ")] == [
        "MSG: std_msgs/Header", "MSG: builtin_interfaces/Time"]
    assert ros_type_name(Image) == "sensor_msgs/msg/Image"
    with pytest.raises(BagError, match="no definition of no_pkg/msg/Nothing"):
        message_definition("no_pkg/msg/Nothing")


def _image(i: int) -> Image:
    msg = wire.image_to_msg(np.full((8, 8, 3), i % 255, np.uint8), 1000.0 + i, "front")
    return msg


def test_bag_round_trip_through_the_mcap_ros2_reader(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    path = tmp_path / "a.mcap"
    with McapBag(path) as bag:
        bag.add_topic("/front/color/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/episode/status", "std_msgs/msg/String")
        for i in range(5):
            bag.write("/front/color/image_raw", serialize_message(_image(i)), time.time_ns(), int((1000 + i) * 1e9))
        bag.write("/episode/status", serialize_message(String(data='{"phase": "RUNNING"}')), time.time_ns())
    with open(path, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary.statistics.message_count == 6 and reader.get_header().profile == "ros2"
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
        decoded = [(ch.topic, msg.publish_time, dec) for _s, ch, msg, dec in reader.iter_decoded_messages()]
    images = [d for t, _p, d in decoded if t == "/front/color/image_raw"]
    assert [(d.height, d.width, d.encoding, d.header.stamp.sec) for d in images] == [
        (8, 8, "rgb8", 1000 + i) for i in range(5)]
    assert [p for t, p, _d in decoded if t.endswith("image_raw")] == [int((1000 + i) * 1e9) for i in range(5)]
    assert decoded[-1][2].data == '{"phase": "RUNNING"}'


def test_a_killed_writers_file_keeps_its_complete_chunks_and_can_be_repaired(tmp_path):
    path = tmp_path / "killed.mcap"
    bag = McapBag(path, chunk_size=4096)
    bag.add_topic("/front/color/image_raw", "sensor_msgs/msg/Image")
    for i in range(200):
        bag.write("/front/color/image_raw", serialize_message(_image(i)), time.time_ns())
    bag._file.flush()  # what the OS has when the process dies: no summary, the open chunk missing
    readable = list(read_complete_chunks(path))
    assert 0 < len(readable) < 200
    frames = [deserialize_message(m.data, Image) for m in readable]
    assert [f.header.stamp.sec for f in frames] == list(range(1000, 1000 + len(frames)))  # in order, none missing
    fixed = tmp_path / "fixed.mcap"
    assert repair(path, fixed) == len(readable)
    from mcap.reader import make_reader
    with open(fixed, "rb") as fh:
        assert make_reader(fh).get_summary().statistics.message_count == len(readable)


def test_the_recorder_reads_header_stamps_from_the_serialized_bytes():
    from geometry_msgs.msg import PoseStamped

    from mentor.recorder_node import header_stamp_ns

    pose = PoseStamped()
    pose.header.stamp.sec, pose.header.stamp.nanosec = 1796000000, 123456789
    assert header_stamp_ns(serialize_message(pose)) == 1796000000_123456789
    assert header_stamp_ns(serialize_message(_image(7))) == 1007 * 1_000_000_000
    assert header_stamp_ns(b"\x00\x01") == 0
