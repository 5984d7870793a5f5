"""New policy weights from the learner, decoded off the control thread and staged for the next tick.

Pure Python (no rclpy). ``offer(payload)`` starts a decoder thread per message; the newest message to
*arrive* wins, even when two decoders finish out of order; ``take()`` hands over the staged weights once.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional


class WeightsInbox:
    """Decode ``learner/weights`` payloads in the background; ``take()`` returns ``(version, step, state)``."""

    def __init__(self, on_error: Callable[[str], None], on_decoder_start: Callable[[], None] = lambda: None,
                 decode: Optional[Callable[[bytes], tuple[int, int, Any]]] = None) -> None:
        """``decode`` defaults to :func:`mentor.weights.decode_weights` (imported on first use: torch)."""
        self._on_error, self._on_decoder_start, self._decode = on_error, on_decoder_start, decode
        self._lock = threading.Lock()
        self._arrivals = 0  # messages offered so far
        self._staged_arrival = 0  # arrival number of the staged weights
        self._staged: Optional[tuple[int, int, Any]] = None

    def offer(self, payload: bytes) -> threading.Thread:
        """Decode ``payload`` on a new thread (returned, for tests); malformed payloads go to ``on_error``."""
        with self._lock:
            self._arrivals += 1
            arrival = self._arrivals
        thread = threading.Thread(target=self._run, args=(payload, arrival), name="weights-decoder", daemon=True)
        thread.start()
        return thread

    @property
    def staged_version(self) -> Optional[int]:
        """Version of the staged weights (still to be taken), or None."""
        with self._lock:
            return None if self._staged is None else int(self._staged[0])

    def take(self) -> Optional[tuple[int, int, Any]]:
        """The staged ``(version, step, state)`` (once), or None."""
        with self._lock:
            staged, self._staged = self._staged, None
        return staged

    def _run(self, payload: bytes, arrival: int) -> None:
        self._on_decoder_start()  # e.g. drop SCHED_FIFO inherited from the executor thread
        if self._decode is None:
            from .weights import decode_weights
            self._decode = decode_weights
        try:
            decoded = self._decode(payload)
        except ValueError as exc:
            self._on_error(f"ignoring weights message: {exc}")
            return
        with self._lock:
            if arrival > self._staged_arrival:
                self._staged_arrival, self._staged = arrival, decoded
