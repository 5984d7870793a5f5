"""QoS profiles of the MENTOR graph (one place, so publishers and subscribers always match)."""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

#: Camera frames: best effort, newest only (a late frame is worthless to a 10-20 Hz controller).
SENSOR = qos_profile_sensor_data
#: Commands (actions): reliable, shallow queue; the robot node only uses the newest.
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
#: Robot state / rewards: reliable, a few messages deep.
STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
#: Transitions actor -> learner: reliable, deep queue (the outbox resends whatever is lost anyway).
TRANSITIONS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
#: Latched state (weights, episode status, acks): reliable + transient local, newest only; a node
#: that (re)starts late receives the last value.
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
