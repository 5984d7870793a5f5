"""Online replay plus a demonstration / intervention buffer, sampled RLPD-style (numpy only).

Human-in-the-loop RL on real robots (HIL-SERL, LeRobot's ``online_ratio``) keeps the operator's data in a
buffer of its own and draws a fixed share of every batch from it, so a few demonstrations and the
interventions keep their weight while online data grows. :class:`MixedReplay` does that over two
:class:`~mentor_policy.replay.ReplayBuffer` s:
- ``add_episode``: every episode goes to the online buffer; an episode with at least one intervention
  step (a human drove the arm) also goes, whole, to the demonstration buffer.
- ``add_demo``: a demonstration (recorded by teleop or a scripted expert) goes to the demonstration
  buffer only.
- ``sample(B)``: ``round(demo_ratio * B)`` transitions from the demonstration buffer (once it holds any)
  and the rest from the online buffer (all online while it is empty, all demos before any online data);
  ``batch["from_demo"]`` (B,) bool says which. ``demo_ratio = 0`` is plain MENTOR (no demo buffer used).
Episodes are keyed (``key``), so adding is idempotent across a crash in both buffers.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from mentor_policy.replay import ReplayBuffer, ReplayError


class MixedReplay:
    """See the module docstring. ``demos`` may be None (then ``demo_ratio`` must be 0)."""

    def __init__(self, online: ReplayBuffer, demos: Optional[ReplayBuffer], demo_ratio: float) -> None:
        if not 0.0 <= float(demo_ratio) <= 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1], got {demo_ratio}")
        if demos is None and demo_ratio > 0:
            raise ValueError("demo_ratio > 0 needs a demonstration buffer")
        self.online, self.demos, self.demo_ratio = online, demos, float(demo_ratio)

    @property
    def num_transitions(self) -> int:
        """Transitions available for sampling (both buffers)."""
        return self.online.num_transitions + (self.demos.num_transitions if self.demos is not None else 0)

    def add_episode(self, episode: dict[str, Any], key: Optional[str] = None) -> bool:
        """Store an online episode; True when it also went to the demonstration buffer (it has interventions)."""
        self.online.add_episode(episode, key=key)
        intervened = self.demos is not None and bool(np.any(np.asarray(episode.get("intervention", [False]))[1:]))
        if intervened:
            self.demos.add_episode(episode, key=key)
        return intervened

    def add_demo(self, episode: dict[str, Any], key: Optional[str] = None) -> None:
        """Store a demonstration episode (demonstration buffer only)."""
        if self.demos is None:
            raise ReplayError("this replay has no demonstration buffer")
        self.demos.add_episode(episode, key=key)

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """A batch of ``batch_size`` transitions mixed as the module docstring says."""
        n_demo = self._demo_share(batch_size)
        parts, flags = [], []
        if n_demo < batch_size:
            parts.append(self.online.sample(batch_size - n_demo))
            flags.append(np.zeros(batch_size - n_demo, bool))
        if n_demo:
            parts.append(self.demos.sample(n_demo))
            flags.append(np.ones(n_demo, bool))
        batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if len(parts) > 1 else dict(parts[0])
        batch["from_demo"] = np.concatenate(flags)
        return batch

    def _demo_share(self, batch_size: int) -> int:
        demo_n = self.demos.num_transitions if self.demos is not None and self.demo_ratio > 0 else 0
        if demo_n == 0:
            return 0
        if self.online.num_transitions == 0:
            return batch_size
        return int(round(self.demo_ratio * batch_size))
