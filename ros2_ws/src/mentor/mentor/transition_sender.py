"""The policy side of the transition transport: encode each step record once, make it durable, send it,
resend what the learner has not acknowledged.

Pure Python (no rclpy): ``publish(payload) -> bool`` is the node's publisher (False when DDS refuses
the message; the record is already in the outbox and goes out again later). See :mod:`mentor.transport`.
"""
from __future__ import annotations

from typing import Callable, Optional

from mentor_policy.step_record import decode_step_record, encode_step_record

from .transport import Outbox


class TransitionSender:
    """Step records -> outbox (fsync) -> ``publish``; unacknowledged ones resent after ``resend_after_s``."""

    def __init__(self, outbox: Outbox, publish: Callable[[bytes], bool], source: str,
                 resend_after_s: float = 1.0, resend_per_tick: int = 20) -> None:
        if not resend_after_s > 0 or resend_per_tick < 1:
            raise ValueError("resend_after_s must be > 0 and resend_per_tick >= 1")
        self.outbox, self._publish, self.source = outbox, publish, source
        self.resend_after_s, self.resend_per_tick = float(resend_after_s), int(resend_per_tick)
        self.counts = {"sent": 0, "resent": 0, "refused": 0}

    def newest(self) -> Optional[tuple[int, int, dict]]:
        """``(episode_id, t, record)`` of the newest durable record (of this node's earlier run), or None."""
        newest = self.outbox.newest()
        if newest is None:
            return None
        record, meta = decode_step_record(newest[1])
        return int(meta["episode_id"]), int(meta["t"]), record

    def send(self, record: dict, meta: dict) -> int:
        """Encode ``record`` with ``meta`` (plus ``source`` and ``seq``), append it to the outbox, publish it;
        returns its sequence number. The outbox append holds no lock: frames and acks keep arriving."""
        seq = self.outbox.next_seq
        payload = encode_step_record(record, {"source": self.source, "seq": seq, **meta})
        self.outbox.append(seq, payload)
        self.outbox.mark_sent(seq)
        self._count(self._publish(payload), "sent")
        return seq

    def resend(self) -> None:
        """Resend up to ``resend_per_tick`` records due for it; stop at the first one DDS refuses."""
        for seq, payload in self.outbox.due(self.resend_after_s, self.resend_per_tick):
            if not self._count(self._publish(payload), "resent"):
                return
            self.outbox.mark_sent(seq)

    def ack(self, seq: int) -> None:
        """The learner stored every record up to ``seq``."""
        self.outbox.ack(seq)

    def close(self) -> None:
        self.outbox.close()

    def _count(self, published: bool, kind: str) -> bool:
        self.counts[kind if published else "refused"] += 1
        return published
