"""The recorder node on a real sim graph: the topics a run produces are in an MCAP file that the standard
readers (mcap + mcap-ros2-support) decode, with counts and stamps that match the run."""
from __future__ import annotations

import json

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("franky_sim")
from _graph_util import AGENT_OVERRIDES, episodes_csv_rows, tails, wait_for, write_run_config  # noqa: E402

from mentor.graph import GraphArgs, build_graph  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]


def test_a_sim_run_is_recorded_into_a_readable_mcap_file(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    task_yaml, params = write_run_config(tmp_path)
    run = tmp_path / "run"
    args = GraphArgs(mode="train", task="reach", task_config=str(task_yaml), use_sim=True, run_dir=str(run),
                     agent_config="tiny", agent_overrides=AGENT_OVERRIDES, config_file=str(params),
                     eval_every_episodes=0, bag_dir=str(tmp_path / "bags"))
    graph = GraphProcesses(build_graph(args), run, node_env())
    graph.start_all()
    try:
        wait_for(graph, "two episodes", lambda: episodes_csv_rows(run) >= 2, 300)
    except BaseException:
        print(tails(graph))
        raise
    finally:
        codes = graph.stop_all()
    assert codes["recorder"] == 0
    (path,) = sorted((tmp_path / "bags").glob("graph_*.mcap"))
    with open(path, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        counts = {ch.topic: summary.statistics.channel_message_counts.get(cid, 0)
                  for cid, ch in summary.channels.items()}
        types = {ch.topic: summary.schemas[ch.schema_id].name for ch in summary.channels.values()}
        decoded: dict[str, list] = {}
        for _schema, channel, message, msg in reader.iter_decoded_messages():
            decoded.setdefault(channel.topic, []).append((message.log_time, message.publish_time, msg))
    assert types["/front/color/image_raw"] == "sensor_msgs/msg/Image"
    assert types["/robot/current_pose"] == "geometry_msgs/msg/PoseStamped"
    for topic in ("/front/color/image_raw", "/policy/action", "/robot/current_pose", "/episode/reward"):
        assert counts[topic] > 10, counts
        assert len(decoded[topic]) == counts[topic]
    frames = decoded["/front/color/image_raw"]
    first = frames[0][2]
    assert (first.height, first.width, first.encoding) == (84, 84, "rgb8") and len(first.data) == 84 * 84 * 3
    # publish time = the camera's capture stamp, increasing; log time = arrival, never before it (same host)
    stamps = [p for _log, p, _m in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert all(log >= pub - 5_000_000 for log, pub, _m in frames)
    poses = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z]
                      for _l, _p, m in decoded["/robot/current_pose"]])
    assert np.all(np.isfinite(poses)) and np.ptp(poses, axis=0).max() > 1e-3  # the arm moved during the run
    actions = [list(m.data) for _l, _p, m in decoded["/policy/action"]]
    assert all(len(a) == 3 and max(abs(v) for v in a) <= 1.0 for a in actions)
    phases = {json.loads(m.data)["phase"] for _l, _p, m in decoded["/episode/status"]}
    assert {"RUNNING", "RESETTING"} <= phases
    # the episodes in the bag are the ones episodes.csv lists
    summaries = [json.loads(m.data) for _l, _p, m in decoded.get("/episode/summary", [])]
    assert len(summaries) >= 2 and all(s["steps"] == 12 for s in summaries[:2])
