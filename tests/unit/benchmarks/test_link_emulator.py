"""The user-space link emulator (benchmarks/link_emulator.py) on two Unix datagram socket pairs standing in for
the TAP devices: frames keep their boundaries and order, arrive after the delay, are lost at the set rate,
and a cut drops everything (frames already on the wire too)."""
import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from benchmarks.link_emulator import Link  # noqa: E402


@pytest.fixture
def wires():
    """(host a's end, host b's end, the link): the link holds the other end of each socket pair."""
    a_host, a_link = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b_host, b_link = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for s in (a_host, a_link, b_host, b_link):
        s.setblocking(False)
    yield a_host, b_host, Link((a_link.fileno(), b_link.fileno()), seed=1)
    for s in (a_host, a_link, b_host, b_link):
        s.close()


def _received(sock) -> list[bytes]:
    frames = []
    while True:
        try:
            frames.append(sock.recv(65536))
        except BlockingIOError:
            return frames


def test_frames_cross_after_the_delay_in_order(wires):
    a, b, link = wires
    assert link.command("impair 20 0") == "ok"
    for i in range(5):
        a.send(b"frame %d" % i)
    link.receive(link.fds[0], now=100.0)
    assert link.send_due(now=100.019) == pytest.approx(0.001)  # not yet: 1 ms to go
    assert _received(b) == []
    assert link.send_due(now=100.020) is None
    assert _received(b) == [b"frame %d" % i for i in range(5)]
    b.send(b"reply")  # and the other way
    link.receive(link.fds[1], now=101.0)
    link.send_due(now=101.1)
    assert _received(a) == [b"reply"]


def test_loss_drops_about_the_set_fraction(wires):
    a, b, link = wires
    link.command("impair 0 10")
    for chunk in range(20):  # 2000 frames, 100 at a time (a socket queue holds a few hundred)
        for _ in range(100):
            a.send(b"x" * 100)
        link.receive(link.fds[0], now=float(chunk))
        link.send_due(now=float(chunk))
        _received(b)
    stats = link.command("stats")
    lost = int(stats.split("lost=")[1].split()[0])
    assert 140 <= lost <= 260, stats  # 10% of 2000, binomial sd ~13
    assert link.counts["forwarded"] + lost == 2000


def test_a_cut_drops_every_frame_until_restored(wires):
    a, b, link = wires
    link.command("impair 50 0")
    a.send(b"on the wire")
    link.receive(link.fds[0], now=0.0)
    link.command("cut")
    a.send(b"during the cut")
    link.receive(link.fds[0], now=0.01)
    assert link.send_due(now=1.0) is None and _received(b) == []
    assert link.command("restore") == "ok" and link.command("clear") == "ok"
    a.send(b"after")
    link.receive(link.fds[0], now=2.0)
    link.send_due(now=2.0)
    assert _received(b) == [b"after"] and link.counts["cut"] == 1


def test_bad_commands_are_refused_with_a_reason(wires):
    _, _, link = wires
    assert link.command("impair -1 0").startswith("error:")
    assert link.command("impair 10 150").startswith("error:")
    assert link.command("delay 10").startswith("error: unknown command")
    assert link.command("").startswith("error:")
    assert link.delay_s == 0.0 and link.loss == 0.0


def test_the_emulator_needs_its_namespace_arguments():
    import subprocess
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "link_emulator.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 2 and "impair <delay_ms> <loss_pct>" in done.stderr
