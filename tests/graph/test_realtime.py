"""SCHED_FIFO for the thread that ticks: only the calling thread changes, and a refusal says how to fix it."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mentor.common import drop_realtime, set_thread_realtime

MENTOR_PKG = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "mentor"


def _may_use_fifo() -> bool:
    import resource

    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] > 0


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="SCHED_FIFO exists on Linux only")
def test_only_the_calling_thread_runs_at_fifo_and_can_drop_back():
    if not _may_use_fifo():
        pytest.skip("this user may not use SCHED_FIFO (not root, no rtprio limit): the refusal is tested below")
    seen = {}

    def worker():
        set_thread_realtime(7)
        seen["raised"] = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
        drop_realtime()
        seen["dropped"] = os.sched_getscheduler(0)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["raised"] == (os.SCHED_FIFO, 7)
    assert seen["dropped"] == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test's own thread never changed


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="SCHED_FIFO exists on Linux only")
def test_an_unprivileged_process_gets_an_error_that_names_the_fixes(tmp_path):
    """Run as an unprivileged user (root drops to 'nobody' in a child); the error explains what to change."""
    code = (  # everything is imported first: an unprivileged user may not read the interpreter's files
        "import os, resource\n"
        "from mentor.common import set_thread_realtime\n"
        "resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))\n"
        "if os.geteuid() == 0:\n"
        "    os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    set_thread_realtime(10)\n"
        "except RuntimeError as e:\n"
        "    print('REFUSED', e)\n"
        "else:\n"
        "    print('ALLOWED')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ,
                              "PYTHONPATH": f"{MENTOR_PKG}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("REFUSED"), out.stdout
    for fix in ("CAP_SYS_NICE", "rtprio", "realtime_priority to 0"):
        assert fix in out.stdout


@pytest.mark.parametrize("priority", [0, 100, -1])
def test_priorities_outside_1_to_99_are_rejected(priority):
    with pytest.raises(ValueError, match="1..99"):
        set_thread_realtime(priority)
