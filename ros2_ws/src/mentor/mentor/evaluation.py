"""Evaluation inside training: which episodes evaluate, how their results form blocks, the best block.

Pure Python (no rclpy, no torch), used by the policy node (schedule, weight hold) and the learner node
(block bookkeeping, version cache, ``eval.csv``).

Schedule (:class:`EvalSchedule`): episode ids (from the episode node, 0, 1, 2, ...; they survive
restarts of every node) run in cycles of ``every`` training episodes followed by ``episodes``
deterministic evaluation episodes. With every=10, episodes=5: ids 0-9 train, 10-14 are eval block 0,
15-24 train, 25-29 are block 1, ... The schedule depends on the id only, so a restarted policy node
picks up where it was.

A block is scored when all its ``episodes`` arrived at the learner; it is *valid* when none was
truncated and all acted with one weights version (the policy holds new weights back during a block,
:class:`WeightsHold`; a policy restart inside a block breaks that and the block is not scored).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Mapping

import numpy as np

from mentor_policy.fileio import truncate_torn_line


@dataclass(frozen=True)
class EvalSchedule:
    """Which episode ids are evaluation episodes, and of which block."""

    every: int = 10  # training episodes before each evaluation block (0 = no evaluation)
    episodes: int = 5  # evaluation episodes per block

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"eval_every_episodes must be >= 0, got {self.every}")
        if self.episodes < 1:
            raise ValueError(f"eval_episodes must be >= 1, got {self.episodes}")

    @property
    def cycle(self) -> int:
        """Episodes per cycle (training + evaluation)."""
        return self.every + self.episodes

    def is_eval(self, episode_id: int) -> bool:
        """True when episode ``episode_id`` is a deterministic evaluation episode."""
        return self.every > 0 and episode_id >= 0 and episode_id % self.cycle >= self.every

    def block(self, episode_id: int) -> int:
        """Id of the evaluation block of ``episode_id`` (0, 1, ...), -1 for a training episode."""
        return episode_id // self.cycle if self.is_eval(episode_id) else -1

    def is_block_end(self, episode_id: int) -> bool:
        """True for the last evaluation episode of its block."""
        return self.is_eval(episode_id) and episode_id % self.cycle == self.cycle - 1


class WeightsHold:
    """Policy side: new weights wait while an evaluation block runs, so one version evaluates it all.

    ``on_open`` / ``on_close`` are called when an episode starts / ends; ``holding`` is True from the
    start of a block's first episode run by this process until its last episode ended, or until an
    episode outside the block starts (the episode node skipped ids). The resets between the block's
    episodes are held too.
    """

    def __init__(self, schedule: EvalSchedule) -> None:
        self.schedule = schedule
        self.block: int | None = None  # block whose weights are held

    @property
    def holding(self) -> bool:
        return self.block is not None

    def on_open(self, episode_id: int) -> None:
        block = self.schedule.block(episode_id)
        self.block = block if block >= 0 else None

    def on_close(self, episode_id: int) -> None:
        if self.schedule.is_block_end(episode_id):
            self.block = None


def episode_success(meta: Mapping[str, Any] | None, last_discount: float, step_success=None) -> bool:
    """An episode's success, as the policy's episode recorder decided it: the ``success`` of its is_last
    record's meta (success at any step). An episode without one (truncated by the learner after the
    policy died) succeeded when one of its records carries a ``success`` flag (``step_success``, row 0
    excluded: nothing led to the first observation) or it ended in a terminal discount of 0."""
    if meta is not None and "success" in meta:
        return bool(meta["success"])
    flagged = step_success is not None and bool(np.any(np.asarray(step_success, dtype=bool)[1:]))
    return flagged or bool(last_discount == 0.0)


@dataclass
class EpisodeOutcome:
    """A finished episode as the learner stored it (``env_steps``: the learner's count at that moment)."""

    source: str
    episode_id: int
    ret: float
    success: bool
    length: int  # transitions (records - 1)
    truncated: bool
    env_steps: int
    eval: bool = False
    eval_block: int = -1
    eval_episodes: int = 0  # episodes of its block (eval episodes only)
    weights_version: int = -1  # version acting at its last record (-1: unknown)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None, **kwargs) -> "EpisodeOutcome":
        """Fill the evaluation fields from the is_last (or latest) record's meta."""
        meta = meta or {}
        return cls(**kwargs, eval=bool(meta.get("eval", False)), eval_block=int(meta.get("eval_block", -1)),
                   eval_episodes=int(meta.get("eval_episodes", 0)),
                   weights_version=int(meta.get("weights_version", -1)))


@dataclass
class BlockResult:
    """A complete evaluation block."""

    source: str
    block: int
    episodes: list[EpisodeOutcome]
    versions: set[int] = field(default_factory=set)

    @property
    def valid(self) -> bool:
        """No truncated episode, and one known weights version acted in all of them."""
        return not any(e.truncated for e in self.episodes) and len(self.versions) == 1 and -1 not in self.versions

    @property
    def weights_version(self) -> int:
        return next(iter(self.versions)) if len(self.versions) == 1 else -1

    @property
    def success_rate(self) -> float:
        return sum(e.success for e in self.episodes) / len(self.episodes)

    @property
    def mean_return(self) -> float:
        return sum(e.ret for e in self.episodes) / len(self.episodes)

    @property
    def env_steps(self) -> int:
        """The learner's env steps when the block's last episode arrived."""
        return max(e.env_steps for e in self.episodes)

    @property
    def reason(self) -> str:
        """Why the block is not valid ('' when it is)."""
        if any(e.truncated for e in self.episodes):
            return "an episode was truncated"
        if len(self.versions) != 1 or -1 in self.versions:
            return f"episodes acted with weights versions {sorted(self.versions)}"
        return ""


class EvalBlocks:
    """Learner side: collects evaluation episodes per (source, block) until a block is complete.

    :meth:`add` returns the :class:`BlockResult` when the block's ``eval_episodes``-th episode arrived.
    A block that a later block of the same source overtook can no longer complete (its missing ids were
    skipped): :meth:`add` moves it to :attr:`abandoned`, which the caller drains.
    """

    def __init__(self) -> None:
        self.open: dict[tuple[str, int], list[EpisodeOutcome]] = {}
        self.abandoned: list[BlockResult] = []

    def add(self, ep: EpisodeOutcome) -> BlockResult | None:
        if not ep.eval or ep.eval_block < 0:
            return None
        for key in [k for k in self.open if k[0] == ep.source and k[1] < ep.eval_block]:
            self.abandoned.append(self._result(key, self.open.pop(key)))
        key = (ep.source, ep.eval_block)
        episodes = self.open.setdefault(key, [])
        episodes.append(ep)
        if len(episodes) < max(ep.eval_episodes, 1):
            return None
        return self._result(key, self.open.pop(key))

    @staticmethod
    def _result(key: tuple[str, int], episodes: list[EpisodeOutcome]) -> BlockResult:
        return BlockResult(key[0], key[1], episodes, {e.weights_version for e in episodes})


class VersionCache:
    """The last ``keep`` policy states the learner published, by weights version (thread-safe).

    ``pin(version, owner)`` keeps a version beyond eviction until ``unpin(owner)``: an evaluation block
    pins the version it acts with at its first record, so that it is still there when the block ends.
    """

    def __init__(self, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.keep = keep
        self._states: OrderedDict[int, Any] = OrderedDict()
        self._pins: dict[Hashable, int] = {}  # owner -> version
        self._lock = threading.Lock()

    def put(self, version: int, state: Any) -> None:
        with self._lock:
            self._states[version] = state
            self._states.move_to_end(version)
            pinned = set(self._pins.values())
            unpinned = [v for v in self._states if v not in pinned]
            for v in unpinned[:max(0, len(unpinned) - self.keep)]:
                del self._states[v]

    def pin(self, version: int, owner: Hashable) -> bool:
        """Pin ``version`` for ``owner`` (first pin of an owner wins); False when it is not cached."""
        with self._lock:
            if owner in self._pins:
                return self._pins[owner] in self._states
            if version not in self._states:
                return False
            self._pins[owner] = version
            return True

    def unpin(self, owner: Hashable) -> None:
        with self._lock:
            self._pins.pop(owner, None)

    def get(self, version: int) -> Any | None:
        with self._lock:
            return self._states.get(version)

    def versions(self) -> list[int]:
        with self._lock:
            return list(self._states)


class EvalCsv:
    """``eval.csv``: one row per evaluation episode, appended and fsynced (plots without TensorBoard)."""

    HEADER = "env_steps,source,episode_id,weights_version,block,success,return\n"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, ep: EpisodeOutcome) -> None:
        truncate_torn_line(self.path)  # a row torn by a crash must not swallow this one
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a") as fh:
            if new:
                fh.write(self.HEADER)
            fh.write(f"{ep.env_steps},{ep.source},{ep.episode_id},{ep.weights_version},{ep.eval_block},"
                     f"{int(ep.success)},{ep.ret:.6f}\n")
            fh.flush()
            os.fsync(fh.fileno())


def beats_best(score: float, best: float | None) -> bool:
    """A block's success rate replaces the best one when at least as high (a tie: the newer weights
    trained longer)."""
    return best is None or score >= best
