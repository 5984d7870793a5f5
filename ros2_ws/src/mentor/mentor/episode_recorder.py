"""The policy side's episode record: which episode is acting, its step records, its outcome.

Pure Python (no rclpy). The policy node feeds it the episode node's status and one observation per
tick; the recorder decides the step record (dm_env layout: this tick's observation with the action
and reward that led to it), when the episode ends (the task's horizon, or a success that terminates),
and its outcome: return, success at any step (the first observation's reward never counts), steps,
truncation. It hands every record to ``emit`` and every finished episode's summary to ``on_closed``.
This is the one place on the policy side where a step is recorded and an episode's success decided.

Restarts: a policy node restarted in the middle of episode ``e`` (its outbox's newest record belongs
to ``e`` at step ``t``) never continues it: the recorder closes the learner's copy with an is_last
record (a repeat of the last observation without reward) and asks for a new episode. Episodes at or
before the last one it closed are never reopened.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from mentor_policy.step_record import EpisodeTally, make_step_record

from .evaluation import EvalSchedule
from .wire import RUNNING


@dataclass
class EpisodeRecord:
    """The episode in progress (one per policy node)."""

    episode_id: int  # id from the episode node (0, 1, ...; survives restarts)
    eval: bool  # a deterministic evaluation episode (every deploy episode)
    eval_block: int  # evaluation block of the episode, -1 for a training episode
    action_dim: int  # length of the action vector
    t: int = 0  # steps recorded so far (the next record's index)
    tally: EpisodeTally = field(default_factory=EpisodeTally)  # return and success of the recorded steps
    prev_action: np.ndarray = field(default=None)  # the action sent after the last record (A,) float32
    prev_intervention: bool = False  # that action came from teleop
    steps_since_weights: int = 0  # actions since the episode opened or new weights arrived (exploration schedule)
    last_sent: Optional[dict] = None  # the last emitted step record
    video: Any = None  # an EpisodeVideo, or None when this episode is not recorded

    def __post_init__(self) -> None:
        if self.prev_action is None:
            self.prev_action = np.zeros(self.action_dim, np.float32)

    def summary(self, truncated: bool) -> dict:
        """The ``episode/summary`` message (wire.EPISODE_SUMMARY)."""
        return {"episode_id": self.episode_id, "steps": self.t, "return": self.tally.episode_return,
                "success": self.tally.success, "truncated": truncated, "eval": self.eval}


class EpisodeRecorder:
    """Opens, records and closes the policy's episodes; see the module docstring.

    ``emit(record, meta)``: persist/send one step record; ``meta`` has ``episode_id``, ``t``, ``eval``,
    ``eval_block`` and, on the is_last record, ``success``, ``truncated``, ``eval_episodes``.
    ``on_closed(summary, request_end)``: an episode ended (publish its summary; ask the episode node for
    the next one when ``request_end``). ``video_for(episode_id)``: an EpisodeVideo or None.
    ``resume``: ``(episode_id, t, record)`` of the newest durable record of an earlier run of the node.
    """

    def __init__(self, task: Any, action_dim: int, schedule: EvalSchedule, evaluate_all: bool,
                 emit: Callable[[dict, dict], None], on_closed: Callable[[dict, bool], None],
                 video_for: Callable[[int], Any] = lambda _eid: None,
                 log: Callable[[str], None] = lambda _msg: None,
                 resume: Optional[tuple[int, int, dict]] = None) -> None:
        self.task, self.action_dim, self.schedule = task, int(action_dim), schedule
        self.evaluate_all = evaluate_all  # deploy: every episode is deterministic
        self._emit, self._on_closed, self._video_for, self._log = emit, on_closed, video_for, log
        self.resume = resume
        self.ended_episode: Optional[int] = None if resume is None else int(resume[0])
        self.current: Optional[EpisodeRecord] = None
        self.done: list[dict] = []  # summaries of the episodes closed by this node, oldest first
        self._pending: Optional[dict] = None  # this tick's record, emitted by commit()

    # -- following the episode node ------------------------------------------------------------
    def follow(self, phase: Optional[str], episode_id: Optional[int]) -> bool:
        """Apply the episode node's status; True when an episode is running and this tick should act."""
        if self.current is not None and episode_id != self.current.episode_id:
            self.close(truncated=True)  # the episode node moved on (it restarted): truncate ours
        if phase != RUNNING or episode_id is None:
            return False
        eid = int(episode_id)
        if self.current is None:
            if self.resume is not None and eid == self.resume[0]:
                self._truncate_resumed(eid)
                return False
            if self.ended_episode is not None and eid <= self.ended_episode:
                return False
            self.open(eid)
        return True

    def open(self, episode_id: int) -> EpisodeRecord:
        eval_ep = self.evaluate_all or self.schedule.is_eval(episode_id)
        self.current = EpisodeRecord(episode_id, eval_ep, self.schedule.block(episode_id), self.action_dim,
                                     video=self._video_for(episode_id))
        kind = f", eval block {self.current.eval_block}" if self.current.eval_block >= 0 else ""
        self._log(f"episode {episode_id} started{kind}")
        return self.current

    # -- one tick ------------------------------------------------------------------------------
    def step(self, image: np.ndarray, proprio: np.ndarray, raw: np.ndarray, reward: float, success: bool) -> bool:
        """Record this tick's observation ``image (C, H, W)`` uint8, ``proprio (P,)`` with the reward and
        success flag the episode node reported for it; ``raw`` is a camera frame for the video.

        Returns True when the policy should act (then call :meth:`commit` with the action), False when
        this observation ended the episode (its record is emitted and the episode closed)."""
        ep = self.current
        if ep is None:
            raise RuntimeError("step() without an open episode (follow() returned False)")
        first = ep.t == 0
        terminal = bool(success) and not first and self.task.terminate_on_success
        last = terminal or ep.t >= self.task.episode_length
        record = make_step_record(image, proprio, ep.prev_action, reward, first=first, last=last, terminal=terminal,
                                  intervention=ep.prev_intervention, success=success)
        ep.tally.add(record)
        if ep.video is not None:
            ep.video.add(raw)
        if last:
            self._send(record, ep)
            self.close(truncated=False)
            return False
        self._pending = record
        return True

    def commit(self, action: np.ndarray, intervention: bool) -> None:
        """After the action went out: emit this tick's record and remember the action for the next one.
        (The command is not held back by persisting the record; the record is on disk before the next tick.)"""
        ep, record, self._pending = self.current, self._pending, None
        if ep is None or record is None:
            raise RuntimeError("commit() without a step() that asked for an action")
        self._send(record, ep)
        ep.prev_action, ep.prev_intervention = np.asarray(action, np.float32), bool(intervention)
        ep.t += 1
        ep.steps_since_weights += 1

    # -- closing -------------------------------------------------------------------------------
    def close(self, truncated: bool, request_end: Optional[bool] = None) -> dict:
        """End the current episode; a truncated one gets an is_last record when its last one was not."""
        ep, self.current, self._pending = self.current, None, None
        if ep is None:
            raise RuntimeError("close() without an open episode")
        self.ended_episode = ep.episode_id
        if truncated and ep.last_sent is not None and not ep.last_sent["is_last"]:
            # close the learner's copy; the repeated observation carries no reward
            self._send({**ep.last_sent, "is_first": False, "is_last": True, "reward": 0.0, "discount": 1.0,
                        "success": False}, ep, truncated=True)
        if ep.video is not None:
            ep.video.close()
        summary = ep.summary(truncated)
        self.done.append(summary)
        self._on_closed(summary, (not truncated) if request_end is None else request_end)
        return summary

    def _truncate_resumed(self, eid: int) -> None:
        _eid, t, record = self.resume
        self.resume = None
        self._log(f"restarted during episode {eid} (t={t}): truncating it and requesting a new one")
        ep = self.open(eid)
        ep.t, ep.last_sent = t + 1, {**record, "is_last": bool(record["is_last"])}
        self.close(truncated=True, request_end=True)

    def _send(self, record: dict, ep: EpisodeRecord, truncated: bool = False) -> None:
        meta = {"episode_id": ep.episode_id, "t": ep.t, "eval": ep.eval, "eval_block": ep.eval_block}
        if record["is_last"]:
            meta.update(success=bool(ep.tally.success), truncated=truncated,
                        episode_return=float(ep.tally.episode_return),
                        episode_steps=int(ep.t), eval_episodes=self.schedule.episodes if ep.eval else 0)
        ep.last_sent = record
        self._emit(record, meta)


def deploy_summary(episodes: list[dict], policy: str) -> dict:
    """The deploy run's summary: success rate and mean return over the episodes not truncated."""
    ok = [e for e in episodes if not e["truncated"]]
    return {"episodes": len(episodes),
            "success_rate": float(np.mean([e["success"] for e in ok])) if ok else 0.0,
            "mean_return": float(np.mean([e["return"] for e in ok])) if ok else 0.0,
            "per_episode": list(episodes), "policy": policy}


def write_deploy_summary(path: str | Path, episodes: list[dict], policy: str) -> dict:
    """Write :func:`deploy_summary` as JSON to ``path`` (atomically; parent directories created); returns it."""
    from mentor_policy.fileio import atomic_write_bytes

    summary = deploy_summary(episodes, policy)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), json.dumps(summary, indent=2).encode())
    return summary


def video_path(videos_dir: str | Path, episode_id: int) -> Path:
    return Path(videos_dir) / f"episode_{episode_id:05d}.mp4"
