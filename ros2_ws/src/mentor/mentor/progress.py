"""The status line of ``mentor-run train``: how far along, how fast, how well (pure Python; tqdm on a terminal).

:class:`TrainingProgress` follows the learner's output lines (its progress, episode and evaluation lines, see
:mod:`mentor.learner_node`) and keeps what a user watches: env steps against the target, the step rate and
the time left, the episodes so far with the success rate of the last ``window``, and the last and best
evaluation block. :class:`ProgressDisplay` shows it: on a terminal one tqdm bar redrawn in place once a
second; otherwise (a log file, CI) one plain status line every ``plain_every_s``. Lines that need a reader
(warnings, errors, a new best evaluation, the end) are printed above it; everything else stays in the
node's log file.
"""
from __future__ import annotations

import re
import sys
import time
from collections import deque
from typing import IO, Optional

_PROGRESS = re.compile(r"learner: env_steps (\d+) updates (\d+) episodes (\d+)")
_EPISODE = re.compile(r"learner: episode \d+ \((\S+)\) return (\S+) success (True|False)")
_EVAL_BLOCK = re.compile(r"learner: eval block \d+ .*?: success \d+/\d+ = ([0-9.]+)")
_PERTURB = re.compile(r"learner: perturbation at update")
_REACHED = re.compile(r"learner: reached (\d+) env steps")
_SHOWN = re.compile(r"\b(WARN|WARNING|ERROR|FATAL)\b|Traceback|new best evaluation|learner: reached|episodes stored")


class TrainingProgress:
    """What the learner's lines say so far (see module docstring)."""

    def __init__(self, target_steps: int = 0, window: int = 20) -> None:
        self.target_steps = max(0, int(target_steps))  # 0 = no target (the run goes on until stopped)
        self.env_steps = self.updates = self.episodes = self.perturbations = 0
        self.recent = deque(maxlen=window)  # success of the last ``window`` training episodes
        self.episodes_seen = 0  # training and evaluation episode lines so far
        self.last_eval: Optional[float] = None
        self.best_eval: Optional[float] = None

    def feed(self, line: str) -> bool:
        """Take one learner output line; True when a reader should see the line itself."""
        if m := _PROGRESS.search(line):
            self.env_steps, self.updates, episodes = (int(g) for g in m.groups())
            self.episodes = max(self.episodes, episodes)
        elif m := _EPISODE.search(line):
            self.episodes_seen += 1
            self.episodes = max(self.episodes, self.episodes_seen)
            if "eval episode" not in line:
                self.recent.append(m.group(3) == "True")
        elif m := _EVAL_BLOCK.search(line):
            self.last_eval = float(m.group(1))
            self.best_eval = self.last_eval if self.best_eval is None else max(self.best_eval, self.last_eval)
        elif _PERTURB.search(line):
            self.perturbations += 1
        if m := _REACHED.search(line):
            self.env_steps = int(m.group(1))
        return bool(_SHOWN.search(line))

    @property
    def rolling_success(self) -> Optional[float]:
        return sum(self.recent) / len(self.recent) if self.recent else None

    def describe(self) -> str:
        """The status without the bar: episodes, rolling training success, evaluations, updates."""
        parts = [f"episodes {self.episodes}"]
        if self.rolling_success is not None:
            parts.append(f"success (last {len(self.recent)}) {self.rolling_success:.2f}")
        if self.last_eval is not None:
            parts.append(f"eval {self.last_eval:.2f} (best {self.best_eval:.2f})")
        parts.append(f"updates {self.updates}")
        if self.perturbations:
            parts.append(f"perturbations {self.perturbations}")
        return " | ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressDisplay:
    """Shows a :class:`TrainingProgress` (see module docstring). ``tty`` None = ask ``stream``."""

    def __init__(self, progress: TrainingProgress, stream: IO[str] | None = None, tty: bool | None = None,
                 plain_every_s: float = 10.0) -> None:
        self.progress, self.stream = progress, stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.plain_every_s = float(plain_every_s)
        self.t0, self.last_plain = time.monotonic(), -float("inf")
        self.bar = None
        if self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=progress.target_steps or None, unit="step", file=self.stream, dynamic_ncols=True,
                            desc="env steps", mininterval=1.0, bar_format="{desc}: {n_fmt}/{total_fmt} "
                            "{percentage:3.0f}%|{bar:20}| {rate_fmt}, ETA {remaining}{postfix}"
                            if progress.target_steps else "{desc}: {n_fmt} | {rate_fmt}, {elapsed}{postfix}")

    def line(self, name: str, text: str) -> None:
        """A node's output line: counted, and shown above the status when it needs a reader."""
        if self.progress.feed(text) or name != "learner":
            self.write(f"[{name}] {text.rstrip()}")

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def status_line(self) -> str:
        """The plain status: env steps against the target, rate, time left, the rest."""
        p, elapsed = self.progress, time.monotonic() - self.t0
        rate = p.env_steps / elapsed if elapsed > 0 else 0.0
        steps = f"env steps {p.env_steps}"
        if p.target_steps:
            left = (p.target_steps - p.env_steps) / rate if rate > 0 else float("inf")
            eta = _clock(left) if left != float("inf") else "?"
            steps += f"/{p.target_steps} ({100.0 * p.env_steps / p.target_steps:.0f}%), ETA {eta}"
        return f"{steps} | {rate:.1f} steps/s | {_clock(elapsed)} | {p.describe()}"

    def refresh(self) -> None:
        """Redraw the bar (terminal) or, every ``plain_every_s``, print the plain status line."""
        if self.bar is not None:
            self.bar.n = min(self.progress.env_steps, self.bar.total) if self.bar.total else self.progress.env_steps
            self.bar.set_postfix_str(self.progress.describe(), refresh=False)
            self.bar.refresh()
        elif time.monotonic() - self.last_plain >= self.plain_every_s:
            self.last_plain = time.monotonic()
            self.write(f"mentor-run: {self.status_line()}")

    def close(self) -> None:
        if self.bar is not None:
            self.refresh()
            self.bar.close()
            self.bar = None
        self.write(f"mentor-run: {self.status_line()}")
