"""Address checks that keep a simulated configuration away from real hardware."""
from __future__ import annotations

import ipaddress

#: names accepted as this machine without a DNS lookup
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for a loopback IP literal (127.0.0.0/8, ::1) or ``localhost``; any other name is False
    (a name could resolve to a robot's FCI address, so it is not trusted)."""
    text = str(host).strip()
    if text.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def check_sim_address(host: str, what: str = "robot_ip") -> str:
    """``host`` if it may be a simulator's address (loopback), else ``ValueError``: a sim
    configuration must never address a real robot."""
    if not is_loopback(host):
        raise ValueError(f"{what} {host!r} is not a loopback address: a sim configuration (use_sim) only "
                         "connects to franky-sim on this machine (use 'auto' or a 127.x.y.z address); "
                         "for a real arm set use_sim false")
    return str(host).strip()
