"""A network link emulated in user space: two TAP devices, Ethernet frames forwarded between them with a
one-way delay and a random loss, for kernels without the ``netem`` qdisc (``tc netem`` is the usual way).

Run by :class:`benchmarks.veth.EmulatedLink` (root): it creates the TAP devices, moves one into each of two
network namespaces, prints ``ready`` and then forwards frames until stdin closes. Commands, one per line
on stdin, each answered with ``ok`` (or ``error: ...``) on stdout:

    impair <delay_ms> <loss_pct>   per direction, like netem on both ends (RTT = 2 x delay)
    clear                          no delay, no loss
    cut / restore                  drop every frame (a pulled cable: the hosts see no link change) / stop
    stats                          frames forwarded, dropped by loss, dropped by the cut

    python benchmarks/link_emulator.py <ns_a> <dev_a> <ns_b> <dev_b> [--seed N]

Frames are whole Ethernet frames (MTU 1500, as on a real LAN), so a 64 KiB UDP datagram travels as ~44 IP
fragments and one lost fragment loses the datagram, as it would on the wire. Delay is applied with a
due-time queue, so frames keep their order and the link's throughput is not capped by the delay.
"""
from __future__ import annotations

import fcntl
import heapq
import os
import random
import select
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA  # ioctl: attach this file descriptor to a named TUN/TAP device
IFF_TAP = 0x0002  # Ethernet frames (not IP packets)
IFF_NO_PI = 0x1000  # no 4-byte packet-information header before each frame
MAX_FRAME = 65536  # bytes: larger than any frame at MTU 1500


def open_tap(name: str) -> int:
    """A non-blocking file descriptor on a new TAP device ``name`` (root; closes with the device)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


class Link:
    """The forwarding state: impairment settings, the due-time queue and counters."""

    def __init__(self, fds: tuple[int, int], seed: int = 0) -> None:
        self.fds = fds
        self.delay_s = 0.0
        self.loss = 0.0  # probability per frame, 0..1
        self.cut = False
        self.rng = random.Random(seed)
        self.queue: list[tuple[float, int, int, bytes]] = []  # (due time s, order, out fd, frame)
        self.order = 0
        self.counts = {"forwarded": 0, "lost": 0, "cut": 0}

    def command(self, line: str) -> str:
        words = line.split()
        if not words:
            return "error: empty command"
        if words[0] == "impair" and len(words) == 3:
            delay_ms, loss_pct = float(words[1]), float(words[2])
            if not (0 <= delay_ms <= 10_000 and 0 <= loss_pct <= 100):
                return "error: delay must be 0..10000 ms and loss 0..100 %"
            self.delay_s, self.loss = delay_ms / 1e3, loss_pct / 100.0
        elif words == ["clear"]:
            self.delay_s, self.loss = 0.0, 0.0
        elif words == ["cut"]:
            self.cut = True
            self.queue.clear()  # frames on the wire are gone too
        elif words == ["restore"]:
            self.cut = False
        elif words == ["stats"]:
            return "ok " + " ".join(f"{k}={v}" for k, v in self.counts.items())
        else:
            return f"error: unknown command {line.strip()!r}"
        return "ok"

    def receive(self, fd: int, now: float) -> None:
        """Read every frame waiting on ``fd`` and queue it for the other end (or drop it)."""
        out = self.fds[1] if fd == self.fds[0] else self.fds[0]
        while True:
            try:
                frame = os.read(fd, MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the device went down
                return
            if self.cut:
                self.counts["cut"] += 1
            elif self.loss and self.rng.random() < self.loss:
                self.counts["lost"] += 1
            else:
                self.order += 1
                heapq.heappush(self.queue, (now + self.delay_s, self.order, out, frame))

    def send_due(self, now: float) -> float | None:
        """Write the frames whose time has come; the seconds until the next one (None: queue empty)."""
        while self.queue and self.queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(self.queue)
            try:
                os.write(out, frame)
                self.counts["forwarded"] += 1
            except OSError:  # device down or its queue full: the frame is lost, as on a wire
                self.counts["lost"] += 1
        return max(0.0, self.queue[0][0] - now) if self.queue else None


def serve(link: Link) -> None:
    """Forward until stdin closes, answering commands as they come."""
    stdin = sys.stdin.fileno()
    pending = b""
    wait: float | None = None
    while True:
        ready, _, _ = select.select([*link.fds, stdin], [], [], wait)
        now = time.monotonic()
        for fd in ready:
            if fd == stdin:
                data = os.read(stdin, 4096)
                if not data:
                    return
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    print(link.command(line.decode(errors="replace")), flush=True)
            else:
                link.receive(fd, now)
        wait = link.send_due(time.monotonic())


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    ns_a, dev_a, ns_b, dev_b = argv[:4]
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    fds = (open_tap(dev_a), open_tap(dev_b))
    for ns, dev in ((ns_a, dev_a), (ns_b, dev_b)):  # the descriptors stay attached across the move
        subprocess.run(["ip", "link", "set", dev, "netns", ns], check=True, capture_output=True)
    print("ready", flush=True)
    serve(Link(fds, seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
