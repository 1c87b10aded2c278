"""A call in a forked child: its value, warnings, errors and memory come back; kill stops it."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

from mujun_geo._errors import DataWarning, MujunGeoError, SchemaError
from mujun_geo._fork import ForkedCall, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="forked children on Linux only")


def test_value_and_warnings_come_back():
    parent = os.getpid()

    def work():
        warnings.warn("3 buildings repaired", DataWarning, stacklevel=1)
        return {"pid": os.getpid(), "sum": float(np.arange(1_000_000).sum())}

    call = ForkedCall(work, label="demo")
    with pytest.warns(DataWarning, match="3 buildings repaired"):
        value = call.result()
    assert value["pid"] != parent and value["sum"] == 499_999_500_000.0
    assert call.result() is value  # the result is kept
    assert call.seconds > 0 and call.pid is None


def test_errors_come_back_data_errors_as_they_are_bugs_with_their_traceback():
    def data_error():
        raise SchemaError("`floors` must be numeric")

    with pytest.raises(SchemaError, match="`floors` must be numeric"):
        ForkedCall(data_error, label="floor area").result()

    def bug():
        return {}["missing"]

    with pytest.raises(ChildProcessError, match="floor area in a child process failed") as info:
        ForkedCall(bug, label="floor area").result()
    assert "Traceback" in str(info.value) and "KeyError: 'missing'" in str(info.value)
    assert not isinstance(info.value, MujunGeoError)  # not shown to the user as bad input

    def vanish():
        os._exit(3)

    with pytest.raises(
        ChildProcessError, match="floor area in a child process failed: exit code 3"
    ):
        ForkedCall(vanish, label="floor area").result()

    def killed():
        os.kill(os.getpid(), 9)

    with pytest.raises(ChildProcessError, match="signal 9 .out of memory"):
        ForkedCall(killed, label="floor area").result()


def test_big_values_cross_the_pipe():
    value = ForkedCall(lambda: np.arange(10_000_000), label="big").result()  # 80 MB
    assert value[-1] == 9_999_999 and len(value) == 10_000_000


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("MUJUN_GEO_FORK", "0")
    assert not can_fork()


def test_no_child_when_fork_fails(monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(OSError, match="temporarily unavailable"):
        ForkedCall(lambda: 1, label="x")
    assert len(os.listdir("/proc/self/fd")) == before  # the pipe is closed again


def test_memory_the_child_adds_is_measured():
    def allocate():
        block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
        return float(block.sum())

    call = ForkedCall(allocate, label="allocate")
    assert call.result() == 200 * 2**20 // 8
    assert 190 <= call.extra_mb <= 260  # the array (and the interpreter's own slack)
    small = ForkedCall(lambda: 1, label="nothing")
    assert small.result() == 1 and small.extra_mb < 50  # the parent's pages are not counted


def test_kill_stops_a_running_child():
    call = ForkedCall(lambda: time.sleep(60), label="sleep")
    pid = call.pid
    t0 = time.perf_counter()
    call.kill()
    assert time.perf_counter() - t0 < 5 and call.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no such process
    call.kill()  # twice is harmless
    with pytest.raises(MujunGeoError, match="stopped"):
        call.result()


def test_child_runs_lower_when_asked():
    main = os.getpriority(os.PRIO_PROCESS, 0)
    assert ForkedCall(
        lambda: os.getpriority(os.PRIO_PROCESS, 0), label="nice", nice=5
    ).result() == min(19, main + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == main
