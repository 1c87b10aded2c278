"""Run one call in a forked child process and get its result back (private).

Threads share one GIL: pyogrio holds it while GDAL writes, and the Python and pandas glue
of a GEOS-heavy stage takes it from the main thread. A forked child inherits every frame
copy-on-write (nothing is serialised on the way in), runs beside the main process with
its own GIL, and sends its result back pickled through a pipe. Used for the largest layer
of the GeoPackage (:mod:`mujun_geo.export`) and for the buildings' floor area beside
matching (:mod:`mujun_geo.stages`).

Only on Linux (``fork`` without ``exec`` is not safe on macOS, absent on Windows) and
from the main thread; callers run the work in-process elsewhere.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import MujunGeoError

__all__ = ["SWITCH", "ForkedCall", "can_fork"]

logger = logging.getLogger(__name__)


#: Set this environment variable to ``0`` to keep all work in one process.
SWITCH = "MUJUN_GEO_FORK"


def can_fork() -> bool:
    """Whether work may go to a forked child here (Linux, main thread, not switched off)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and threading.current_thread() is threading.main_thread()
        and os.environ.get(SWITCH, "1") != "0"
    )


def _status_mb(field: str) -> float:
    """``VmRSS``, ``VmHWM``… of this process in MB (NaN where /proc has none)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _private_mb() -> float:
    """Pages mapped by this process alone (``Private_*`` of /proc/self/smaps_rollup), MB."""
    try:
        rollup = Path("/proc/self/smaps_rollup").read_text()
    except OSError:
        return float("nan")
    kb = sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Private_"))
    return kb / 1024


class ForkedCall:
    """``fn()`` in a forked child; :meth:`result` waits for its value, :meth:`kill` stops it.

    The child runs ``fn`` (``nice`` steps below this process), pickles its value, or its
    exception, with the warnings it raised, into a pipe and leaves with ``os._exit`` (no
    ``finally`` of the parent's stack, no ``atexit``, no buffered output flushed twice).
    :meth:`result` re-issues the warnings here and returns the value; an exception of
    mujun-geo's own (a data error the user can fix) is raised as it is, any other as
    :class:`ChildProcessError` naming ``label`` with the child's traceback (a bug, not
    the user's input). The parent's other threads must not be inside GDAL, GEOS's
    prepared geometries or Arrow's compute functions when it forks, since the child
    would inherit their locks taken: :func:`can_fork` only allows the main thread, and
    the callers fork when the run's only other threads are idle pools and the input
    hashing (``hashlib``, whose state the child never touches). ``MUJUN_GEO_FORK=0``
    turns forking off. The child dies with its parent (``PR_SET_PDEATHSIG``).

    After :meth:`result`, :attr:`extra_mb` bounds what the child added to the machine's
    memory (pages shared copy-on-write with the parent count once): its peak growth
    (Linux ``VmHWM`` − ``VmRSS`` at the start) plus the shared pages it was left alone
    with as the parent wrote to its own copies (private pages at the end beyond that
    growth); :attr:`seconds` is its wall time.

    Examples
    --------
    >>> call = ForkedCall(lambda: sum(range(10)), label="demo") if can_fork() else None
    >>> call.result() if call else 45
    45
    """

    def __init__(self, fn: Callable[[], Any], *, label: str, nice: int = 0) -> None:
        self.label = label
        self.extra_mb = float("nan")
        self.seconds = float("nan")
        self._t0 = time.perf_counter()
        read_end, write_end = os.pipe()
        parent = os.getpid()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns on fork in a process with threads: the idle pool
                # threads hold no lock the child takes (see the class docstring)
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:  # no memory or processes left for it: the caller works here
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child: never returns, whatever happens
            try:
                os.close(read_end)
                _child(fn, write_end, nice, parent)
            finally:
                os._exit(1)
        os.close(write_end)
        self.pid: int | None = pid
        self._pipe: int | None = read_end
        self._done = False
        self._killed = False
        self._value: Any = None

    def result(self) -> Any:
        """The value of ``fn()`` (waits for the child; raises what it raised)."""
        if self._done:
            if self._killed:
                msg = f"{self.label}: the child process was stopped"
                raise MujunGeoError(msg)
            return self._value
        blob = self._read_pipe()
        assert self.pid is not None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        self._done = True
        self.seconds = time.perf_counter() - self._t0
        code = os.waitstatus_to_exitcode(status)
        if not blob:  # the child died before it could answer
            why = f"exit code {code}"
            if code < 0:
                why = f"killed by signal {-code}"
                if -code == signal.SIGKILL:
                    why += f" (out of memory? {SWITCH}=0 keeps the work in one process)"
            msg = f"{self.label} in a child process failed: {why}"
            raise ChildProcessError(msg)
        kind, payload, extra_mb, caught = pickle.loads(blob)
        for message, category in caught:
            warnings.warn(message, category, stacklevel=2)
        if kind == "mujun":  # a data error the user can fix
            raise pickle.loads(payload)
        if kind != "ok":
            msg = f"{self.label} in a child process failed: {payload}"
            raise ChildProcessError(msg)
        payload = pickle.loads(payload)
        self.extra_mb = extra_mb
        logger.info(
            "%s done by a child process in %.1f s (its memory: +%.0f MB)",
            self.label, self.seconds, self.extra_mb,
            extra={"child_extra_mb": self.extra_mb, "child_seconds": self.seconds},
        )  # fmt: skip
        self._value = payload
        return payload

    def kill(self) -> None:
        """Stop the child if it still runs (the caller failed and will not need it)."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):  # gone, or reaped elsewhere
                pass
            self.pid = None
            self._done = self._killed = True
        self._read_pipe()

    def _read_pipe(self) -> bytes:
        if self._pipe is None:
            return b""
        chunks = []
        while chunk := os.read(self._pipe, 1 << 20):  # until the child closes its end
            chunks.append(chunk)
        os.close(self._pipe)
        self._pipe = None
        return b"".join(chunks)


def _child(fn: Callable[[], Any], pipe: int, nice: int, parent: int) -> None:
    code = 1
    try:
        _die_with(parent)
        start = _status_mb("VmRSS")  # the pages shared with the parent
        if nice > 0:
            os.nice(nice)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")  # the parent's filters decide when re-issued
            try:
                out: tuple = ("ok", pickle.dumps(fn(), protocol=5))
            except MujunGeoError as exc:
                try:
                    out = ("mujun", pickle.dumps(exc, protocol=5))
                    pickle.loads(out[1])  # (a subclass that cannot be rebuilt: as a bug)
                except Exception:  # noqa: BLE001
                    out = ("error", traceback.format_exc())
            except BaseException:  # noqa: BLE001 - a bug: the parent shows the traceback
                out = ("error", traceback.format_exc())
        caught = [(str(w.message), w.category) for w in seen]
        grown = max(_status_mb("VmHWM") - start, 0.0)
        orphaned = max(_private_mb() - (_status_mb("VmRSS") - start), 0.0)
        sent = len(out[1]) / 2**20 if isinstance(out[1], bytes) else 0.0  # the pickled value
        blob = pickle.dumps((*out, grown + orphaned + sent, caught), protocol=5)
        view = memoryview(blob)
        while view:
            view = view[os.write(pipe, view) :]
        code = 0
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Have Linux kill this child when its parent dies (no orphan left running)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call
        os._exit(1)
