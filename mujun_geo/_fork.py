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

import logging
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import MujunGeoError

__all__ = ["ForkedCall", "can_fork"]

logger = logging.getLogger(__name__)


def can_fork() -> bool:
    """Whether work may go to a forked child here (Linux, main thread)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and threading.current_thread() is threading.main_thread()
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
    :class:`~mujun_geo._errors.MujunGeoError` naming ``label``. The parent's other threads
    must not be inside GDAL or GEOS's prepared geometries when it forks: :func:`can_fork`
    only allows the main thread, and the callers fork when their pools are idle.

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
        with warnings.catch_warnings():
            # Python 3.12+ warns on fork in a process with threads: the idle pool threads
            # hold no lock the child takes (see the class docstring)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _child(fn, write_end, nice)
        os.close(write_end)
        self.pid: int | None = pid
        self._pipe: int | None = read_end
        self._done = False
        self._value: Any = None

    def result(self) -> Any:
        """The value of ``fn()`` (waits for the child; raises what it raised)."""
        if self._done:
            return self._value
        blob = self._read_pipe()
        assert self.pid is not None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        self._done = True
        self.seconds = time.perf_counter() - self._t0
        code = os.waitstatus_to_exitcode(status)
        try:
            kind, payload, extra_mb, caught = pickle.loads(blob)
        except Exception:  # noqa: BLE001 - no message: say how the child ended
            why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            msg = f"{self.label} in a child process failed: {why}"
            raise MujunGeoError(msg) from None
        for message, category in caught:
            warnings.warn(message, category, stacklevel=2)
        if kind != "ok":
            if isinstance(payload, MujunGeoError):
                raise payload
            msg = f"{self.label} in a child process failed: {payload}"
            raise MujunGeoError(msg)
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
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = None
            self._done = True
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


def _child(fn: Callable[[], Any], pipe: int, nice: int) -> None:
    code = 1
    try:
        start = _status_mb("VmRSS")  # the pages shared with the parent
        if nice > 0:
            os.nice(nice)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")  # the parent's filters decide when re-issued
            try:
                out: tuple = ("ok", fn())
            except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises
                own = isinstance(exc, MujunGeoError)
                out = ("error", exc if own else f"{type(exc).__name__}: {exc}")
        caught = [(str(w.message), w.category) for w in seen]
        grown = max(_status_mb("VmHWM") - start, 0.0)
        orphaned = max(_private_mb() - (_status_mb("VmRSS") - start), 0.0)
        extra = grown + orphaned
        try:
            blob = pickle.dumps((*out, extra, caught), protocol=5)
        except Exception as exc:  # noqa: BLE001 - an unpicklable value or exception
            blob = pickle.dumps(("error", f"{type(exc).__name__}: {exc}", extra, caught))
        view = memoryview(blob)
        while view:
            view = view[os.write(pipe, view) :]
        code = 0
    finally:
        os._exit(code)
