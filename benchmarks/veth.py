"""Two test hosts on one machine: network namespaces joined by a link (root, iproute2, tc).

    with VethPair() as net:               # namespaces mentor_<pid>_a / _b, 10.231.<n>.1 and .2
        subprocess.Popen(net.prefix("a") + [python, ...])   # a process on host a
        net.impair(delay_ms=20, loss_pct=1)                 # tc netem on both ends
        net.cut(); ...; net.restore()                       # the link down, then up again

    with impairable_hosts() as net: ...   # a VethPair where the kernel has netem, else an EmulatedLink

:class:`VethPair` joins them with a veth pair and impairs it with ``tc netem``. :class:`EmulatedLink` joins
them with two TAP devices and forwards the Ethernet frames in user space (benchmarks/link_emulator.py),
adding the delay and loss there: the same interface, for kernels built without the netem qdisc.

Only addresses these classes create carry traffic (10.231.0.0/16, test-only, never routed off the
machine); every namespace has its own loopback. Multicast (DDS discovery) is routed over the link.
Everything is removed on exit, also after an error. Linux only; needs root (``ip netns``).
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path


def available() -> str | None:
    """None when this process can create namespaces and veth pairs, else the reason why not."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "ip netns needs root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    return f"missing {missing} (iproute2)" if missing else None


@functools.lru_cache(maxsize=1)
def netem_in_kernel() -> bool:
    """True when ``tc netem`` works here (tried on the loopback of a throwaway namespace)."""
    if available():
        return False
    probe = f"mentor_probe_{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        done = subprocess.run(["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                               "delay", "1ms"], capture_output=True)
        return done.returncode == 0
    except subprocess.CalledProcessError:
        return False
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def impairment_unavailable() -> str | None:
    """None when :func:`impairable_hosts` can make a delayed, lossy link here, else the reason why not."""
    why = available()
    if why or netem_in_kernel():
        return why
    return None if os.path.exists("/dev/net/tun") else "no tc netem in this kernel and no /dev/net/tun to emulate it"


def impairable_hosts(tag: str | None = None) -> "VethPair | EmulatedLink":
    """Two hosts whose link can be delayed and made lossy: veth + netem where it exists, else emulated."""
    return VethPair(tag) if netem_in_kernel() else EmulatedLink(tag)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class _TwoHosts:
    """Namespaces ``a`` and ``b`` with addresses on one link; subclasses make the link (see module docstring)."""

    def __init__(self, tag: str | None = None) -> None:
        tag = tag or str(os.getpid() % 100000)
        subnet = 1 + os.getpid() % 250
        self.ns = {"a": f"mentor_{tag}_a", "b": f"mentor_{tag}_b"}
        self.dev = {"a": f"mva{tag}"[:15], "b": f"mvb{tag}"[:15]}
        self.addr = {"a": f"10.231.{subnet}.1", "b": f"10.231.{subnet}.2"}

    def __enter__(self):
        why = available()
        if why:
            raise RuntimeError(f"cannot create test hosts: {why}")
        try:
            for side in "ab":
                _ip("netns", "add", self.ns[side])
            self._make_link()
            for side in "ab":
                ns, dev = self.ns[side], self.dev[side]
                _ip("-n", ns, "addr", "add", f"{self.addr[side]}/24", "dev", dev)
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "link", "set", dev, "up")
                _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)  # DDS discovery multicast
        except BaseException:
            self.__exit__()
            raise
        return self

    def _make_link(self) -> None:
        raise NotImplementedError

    def prefix(self, side: str) -> list[str]:
        """Command prefix that runs a program on host ``side``."""
        return ["ip", "netns", "exec", self.ns[side]]

    def __exit__(self, *exc) -> None:
        for side in "ab":  # deleting a namespace removes its end of the link
            subprocess.run(["ip", "netns", "del", self.ns[side]], capture_output=True)


class VethPair(_TwoHosts):
    """Two hosts joined by a veth pair; impairments with ``tc`` (see module docstring)."""

    kind = "veth"

    def _make_link(self) -> None:
        _ip("link", "add", self.dev["a"], "type", "veth", "peer", "name", self.dev["b"])
        for side in "ab":
            _ip("link", "set", self.dev[side], "netns", self.ns[side])

    def cut(self) -> None:
        """Take the link down (both ends): nothing passes until :meth:`restore`."""
        for side in "ab":
            _ip("-n", self.ns[side], "link", "set", self.dev[side], "down")

    def restore(self) -> None:
        for side in "ab":
            _ip("-n", self.ns[side], "link", "set", self.dev[side], "up")
            subprocess.run(["ip", "-n", self.ns[side], "route", "replace", "224.0.0.0/4", "dev", self.dev[side]],
                           check=True, capture_output=True)

    def _qdisc(self, *spec: str) -> None:
        for side in "ab":
            done = subprocess.run(["ip", "netns", "exec", self.ns[side], "tc", "qdisc", "replace", "dev",
                                   self.dev[side], "root", *spec], capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"tc qdisc {' '.join(spec)}: {done.stderr.strip()}")

    def impair(self, delay_ms: float = 0.0, loss_pct: float = 0.0) -> None:
        """``tc netem`` delay and loss on both ends (replacing any earlier impairment)."""
        self._qdisc("netem", "delay", f"{delay_ms}ms", "loss", f"{loss_pct}%")

    def limit_rate(self, rate: str = "20mbit", burst: str = "64kb", latency_ms: float = 50.0) -> None:
        """A token-bucket bandwidth limit on both ends (``tc tbf``): queueing delay once the link is full."""
        self._qdisc("tbf", "rate", rate, "burst", burst, "latency", f"{latency_ms}ms")

    def clear(self) -> None:
        """Remove any impairment or limit."""
        for side in "ab":
            subprocess.run(["ip", "netns", "exec", self.ns[side], "tc", "qdisc", "del", "dev", self.dev[side], "root"],
                           capture_output=True)


class EmulatedLink(_TwoHosts):
    """Two hosts joined by TAP devices whose frames a user-space forwarder passes on, delayed and lossy
    (benchmarks/link_emulator.py, one process, stopped on exit). Same interface as :class:`VethPair`."""

    kind = "emulated link (user-space TAP forwarder)"

    def _make_link(self) -> None:
        script = Path(__file__).with_name("link_emulator.py")
        self._forwarder = subprocess.Popen(
            [sys.executable, str(script), self.ns["a"], self.dev["a"], self.ns["b"], self.dev["b"]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        line = self._forwarder.stdout.readline().strip()
        if line != "ready":
            self._forwarder.kill()
            raise RuntimeError(f"link emulator did not start: {line or self._forwarder.stderr.read().strip()}")

    def _command(self, line: str) -> str:
        forwarder = getattr(self, "_forwarder", None)
        if forwarder is None or forwarder.poll() is not None:
            raise RuntimeError("the link emulator is not running")
        forwarder.stdin.write(line + "\n")
        forwarder.stdin.flush()
        answer = forwarder.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise RuntimeError(f"link emulator: {line!r}: {answer or 'no answer'}")
        return answer

    def cut(self) -> None:
        """Every frame dropped until :meth:`restore` (a pulled cable; the interfaces stay up)."""
        self._command("cut")

    def restore(self) -> None:
        self._command("restore")

    def impair(self, delay_ms: float = 0.0, loss_pct: float = 0.0) -> None:
        """One-way delay (ms) and loss (% of frames) in each direction, replacing any earlier impairment."""
        self._command(f"impair {delay_ms:g} {loss_pct:g}")

    def clear(self) -> None:
        self._command("clear")

    def __exit__(self, *exc) -> None:
        forwarder = getattr(self, "_forwarder", None)
        if forwarder is not None and forwarder.poll() is None:
            forwarder.stdin.close()  # the forwarder returns when stdin closes
            try:
                forwarder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                forwarder.kill()
                forwarder.wait()
        super().__exit__(*exc)
