"""Two test hosts on one machine: network namespaces joined by a veth pair (root, iproute2, tc).

    with VethPair() as net:               # namespaces mentor_<pid>_a / _b, 10.231.<n>.1 and .2
        subprocess.Popen(net.prefix("a") + [python, ...])   # a process on host a
        net.impair(delay_ms=20, loss_pct=1)                 # tc netem on both ends
        net.cut(); ...; net.restore()                       # the link down, then up again

Only addresses this class creates carry traffic (10.231.0.0/16, test-only, never routed off the machine);
every namespace has its own loopback. Multicast (DDS discovery) is routed over the veth. Everything is
removed on exit, also after an error. Linux only; needs root (``ip netns``).
"""
from __future__ import annotations

import os
import shutil
import subprocess


def available() -> str | None:
    """None when this process can create namespaces and veth pairs, else the reason why not."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "ip netns needs root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    return f"missing {missing} (iproute2)" if missing else None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class VethPair:
    """Namespaces ``a`` and ``b`` with one veth link between them (see module docstring)."""

    def __init__(self, tag: str | None = None) -> None:
        tag = tag or str(os.getpid() % 100000)
        subnet = 1 + os.getpid() % 250
        self.ns = {"a": f"mentor_{tag}_a", "b": f"mentor_{tag}_b"}
        self.dev = {"a": f"mva{tag}"[:15], "b": f"mvb{tag}"[:15]}
        self.addr = {"a": f"10.231.{subnet}.1", "b": f"10.231.{subnet}.2"}

    def __enter__(self) -> "VethPair":
        why = available()
        if why:
            raise RuntimeError(f"cannot create test hosts: {why}")
        try:
            for side in "ab":
                _ip("netns", "add", self.ns[side])
            _ip("link", "add", self.dev["a"], "type", "veth", "peer", "name", self.dev["b"])
            for side in "ab":
                ns, dev = self.ns[side], self.dev[side]
                _ip("link", "set", dev, "netns", ns)
                _ip("-n", ns, "addr", "add", f"{self.addr[side]}/24", "dev", dev)
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "link", "set", dev, "up")
                _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)  # DDS discovery multicast
        except BaseException:
            self.__exit__()
            raise
        return self

    def prefix(self, side: str) -> list[str]:
        """Command prefix that runs a program on host ``side``."""
        return ["ip", "netns", "exec", self.ns[side]]

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

    def netem_available(self) -> bool:
        """True when the kernel has the netem qdisc (delay, loss); some kernels are built without it."""
        try:
            self._qdisc("netem", "delay", "0ms")
        except RuntimeError:
            return False
        self.clear()
        return True

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

    def __exit__(self, *exc) -> None:
        for side in "ab":  # deleting a namespace removes its end of the veth, and with it the pair
            subprocess.run(["ip", "netns", "del", self.ns[side]], capture_output=True)
