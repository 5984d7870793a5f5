"""Episode node (real rclpy, in this process): an operator's success/failure label stores the newest frame of
every camera in the label store that trains the success classifier."""
from __future__ import annotations

import numpy as np
import pytest
import rclpy
from std_srvs.srv import SetBool

from mentor import wire
from mentor.graph import NodeSpec, write_params_yaml
from robot_envs.labels import LabelStore

pytestmark = pytest.mark.ros


def test_labels_store_the_cameras_newest_frames(tmp_path):
    params = {"task": "reach", "use_sim": False, "run_dir": str(tmp_path / "run"), "cameras": ["front", "side"],
              "label_frames_dir": str(tmp_path / "labels"), "service_timeout_s": 0.5, "reset_retries": 1}
    path = write_params_yaml(NodeSpec("episode", "episode_node", "", params), tmp_path / "params")
    rclpy.init(args=["--ros-args", "--params-file", str(path)])
    from mentor.episode_node import EpisodeNode
    node = EpisodeNode()
    try:
        nothing = node._srv_label(SetBool.Request(data=True), SetBool.Response())
        assert not nothing.success and "no camera frame" in nothing.message
        front = np.zeros((84, 84, 3), np.uint8)
        front[..., 0] = 255
        node._on_image("front", wire.image_to_msg(front, 0.0, "front"))
        node._on_image("side", wire.image_to_msg(np.full((84, 84, 3), 60, np.uint8), 0.0, "side"))
        ok = node._srv_label(SetBool.Request(data=True), SetBool.Response())
        bad = node._srv_label(SetBool.Request(data=False), SetBool.Response())
        assert ok.success and bad.success and "2 frame(s) stored" in ok.message
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    store = LabelStore(tmp_path / "labels")
    front_frames, side_frames = store.frames("front"), store.frames("side")
    assert len(front_frames["success"]) == 1 and len(front_frames["failure"]) == 1 and len(side_frames["success"]) == 1
    np.testing.assert_array_equal(front_frames["success"][0][1], front)
