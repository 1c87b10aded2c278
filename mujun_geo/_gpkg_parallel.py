"""Two GeoPackage writers at once: a forked child and an SQLite merge (private).

GDAL writes a GeoPackage row by row and pyogrio calls it with the GIL held, so a second
thread cannot write beside it. :func:`mujun_geo.export.write_geopackage` therefore hands
the largest layer of a big run to a forked child process, which writes it into the
output file, while the parent writes the other layers into a side file. When both are
done, :func:`merge_layers` copies the side file's tables into the output at the SQLite
level (``INSERT … SELECT *`` between identical tables is SQLite's page-copy transfer, and
the R-tree's shadow tables are copied as GDAL copies its own background R-tree), and
:func:`order_layers` restores the layer order a sequential write gives.

Only on Linux (``fork`` without ``exec`` is not safe on macOS, absent on Windows) and
from the main thread; everything else writes sequentially. The child inherits the
prepared frames copy-on-write, so nothing is serialised and its own memory is the Arrow
batches it builds (see :class:`ForkedWriter`).
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ._errors import MujunGeoError

__all__ = [
    "ForkedWriter",
    "MergeUnsupported",
    "can_fork",
    "connect_temporary",
    "merge_layers",
    "order_layers",
]

logger = logging.getLogger(__name__)

#: GeoPackage tables whose rows describe one layer (copied with the layer's rows).
_PER_LAYER = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")
#: Tables a side file may hold besides its layers; rows of any other table stop the merge.
_KNOWN = {
    *_PER_LAYER,
    "gpkg_spatial_ref_sys",
    "gpkg_tile_matrix",
    "gpkg_tile_matrix_set",
    "sqlite_sequence",
}


class MergeUnsupported(MujunGeoError):
    """The side file holds something :func:`merge_layers` does not copy (nothing changed)."""


def can_fork() -> bool:
    """Whether a layer may be written by a forked child here (Linux, main thread)."""
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


class ForkedWriter:
    """Run ``write()`` in a forked child; :meth:`wait` for it, :meth:`kill` to abandon it.

    The child runs ``write`` and leaves with ``os._exit`` (no ``finally`` of the parent's
    stack, no ``atexit``, no buffered output flushed twice). An exception in the child
    comes back through a pipe as text and :meth:`wait` raises it as
    :class:`~mujun_geo._errors.MujunGeoError`. The parent's other threads must not be inside
    GDAL when it forks (:func:`can_fork` only allows the main thread; a run's background
    threads are done by the time it writes).

    After :meth:`wait`, :attr:`extra_mb` is the child's peak resident memory above its
    resident memory at the start: the pages it shares with the parent copy-on-write are
    counted once, so this is what the child added to the machine's memory (an upper
    bound; Linux ``VmHWM`` − ``VmRSS``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "child.txt"
    >>> if can_fork():
    ...     ForkedWriter(lambda: out.write_text("written by the child"), label="demo").wait()
    ... else:
    ...     _ = out.write_text("written by the child")
    >>> out.read_text()
    'written by the child'
    """

    def __init__(self, write: Callable[[], object], *, label: str) -> None:
        self.label = label
        self.extra_mb = float("nan")
        self.seconds = float("nan")
        self._t0 = time.perf_counter()
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns on fork in a process with threads: the run's idle pool
            # threads hold no lock the child takes (see the class docstring)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _child(write, write_end)
        os.close(write_end)
        self.pid: int | None = pid
        self._pipe: int | None = read_end

    def wait(self) -> None:
        """Wait for the child; raise :class:`~mujun_geo._errors.MujunGeoError` if it failed."""
        if self.pid is None:
            return
        message = self._read_pipe()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        self.seconds = time.perf_counter() - self._t0
        code = os.waitstatus_to_exitcode(status)
        if code == 0 and message.startswith("ok "):
            self.extra_mb = float(message[3:])
        else:
            why = message or (f"killed by signal {-code}" if code < 0 else f"exit code {code}")
            msg = f"writing {self.label} in a child process failed: {why}"
            raise MujunGeoError(msg)
        logger.info(
            "%s written by a child process in %.1f s (its memory: +%.0f MB)",
            self.label, self.seconds, self.extra_mb,
            extra={"child_extra_mb": self.extra_mb, "child_seconds": self.seconds},
        )  # fmt: skip

    def kill(self) -> None:
        """Stop the child if it still runs (the caller failed and removes its files)."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = None
        self._read_pipe()

    def _read_pipe(self) -> str:
        if self._pipe is None:
            return ""
        chunks = []
        while chunk := os.read(self._pipe, 65536):  # until the child closes its end
            chunks.append(chunk)
        os.close(self._pipe)
        self._pipe = None
        return b"".join(chunks).decode("utf-8", "replace")


def _child(write: Callable[[], object], pipe: int) -> None:
    code = 1
    try:
        start = _status_mb("VmRSS")  # the pages shared with the parent
        write()
        os.write(pipe, f"ok {max(_status_mb('VmHWM') - start, 0.0):.1f}".encode())
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        try:
            os.write(pipe, f"{type(exc).__name__}: {exc}".encode()[:60000])
        except BaseException:  # noqa: BLE001, S110 - the exit code still tells
            pass
    finally:
        os._exit(code)


def connect_temporary(path: Path) -> sqlite3.Connection:
    """An SQLite connection to a file nothing reads before it is renamed, fsynced, into place.

    No fsync at each commit and the journal in memory, as GDAL writes the same file
    (:data:`mujun_geo.export._TEMP_FILE_SQLITE`): the first commit would otherwise flush
    every page GDAL left to the kernel (about 1 s per GB), and a crash leaves a temporary
    file that is deleted, never published. Transactions by hand (``isolation_level=None``).
    """
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA journal_mode = MEMORY")
    return con


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def merge_layers(side: Path, into: Path, names: Sequence[str]) -> None:
    """Copy the tables ``names`` (as GDAL wrote them into ``side``) into ``into``.

    Each layer's table, R-tree, triggers and indexes are created in ``into`` from their
    ``side`` definitions; the rows and the R-tree's shadow tables are copied as they are,
    then the layer's rows of the GeoPackage tables (contents, geometry columns,
    extensions, feature count) and any spatial reference system ``into`` lacks. One
    transaction: on :class:`MergeUnsupported` (an object of the same name in ``into``,
    a reference system defined differently, rows in a table not listed in ``_KNOWN``)
    nothing is changed and the caller writes those layers itself.
    """
    con = connect_temporary(into)
    try:
        con.execute("ATTACH DATABASE ? AS side", (str(side),))
        con.execute("BEGIN IMMEDIATE")
        try:
            _merge(con, list(names))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        con.execute("DETACH DATABASE side")
    finally:
        con.close()


def _merge(con: sqlite3.Connection, names: list[str]) -> None:
    side = con.execute("SELECT type, name, tbl_name, sql FROM side.sqlite_master").fetchall()
    in_main = {r[0].lower() for r in con.execute("SELECT name FROM main.sqlite_master")}
    side_tables = {name.lower(): sql for kind, name, _, sql in side if kind == "table"}
    plans = []
    owned: set[str] = set()
    for layer in names:
        sql = side_tables.get(layer.lower())
        if not sql:
            msg = f"layer {layer} is not a table of the side file"
            raise MergeUnsupported(msg)
        # the R-trees GDAL made (rtree_<table>_<geometry column>) and their shadow tables
        rtrees = [
            (f"rtree_{layer}_{column}", side_tables[f"rtree_{layer}_{column}".lower()])
            for (column,) in con.execute(
                "SELECT column_name FROM side.gpkg_geometry_columns "
                "WHERE lower(table_name) = lower(?)",
                (layer,),
            )
            if f"rtree_{layer}_{column}".lower() in side_tables
        ]
        extra = [
            sql for kind, _, table, sql in side
            if kind in ("index", "trigger") and sql and table.lower() == layer.lower()
        ]  # fmt: skip
        names_here = {layer.lower()} | {
            f"{r.lower()}{s}" for r, _ in rtrees for s in ("", "_node", "_rowid", "_parent")
        }
        clash = sorted(names_here & in_main)
        if clash:
            msg = f"{', '.join(clash)} exist in both files"
            raise MergeUnsupported(msg)
        owned |= names_here
        plans.append((layer, sql, rtrees, extra))
    # anything else with rows must be another layer of the side file (left there)
    others = [r[0].lower() for r in con.execute("SELECT table_name FROM side.gpkg_contents")]
    for name in side_tables.keys() - owned - _KNOWN:
        if any(name == o or name.startswith(f"rtree_{o}_") for o in others):
            continue
        if con.execute(f"SELECT 1 FROM side.{_quote(name)} LIMIT 1").fetchone():
            msg = f"side file table {name} is not copied by the merge"
            raise MergeUnsupported(msg)

    # GeoPackage tables the side file has and the output lacks (e.g. gpkg_ogr_contents)
    for table in _PER_LAYER:
        if table in side_tables and table not in in_main:
            con.execute(side_tables[table])
    # reference systems: add the missing ones, refuse a differing definition
    main_srs = dict(con.execute("SELECT srs_id, definition FROM main.gpkg_spatial_ref_sys"))
    for row in con.execute("SELECT * FROM side.gpkg_spatial_ref_sys").fetchall():
        srs_id, definition = row[1], row[4]
        if srs_id not in main_srs:
            marks = ", ".join("?" * len(row))
            con.execute(f"INSERT INTO main.gpkg_spatial_ref_sys VALUES ({marks})", row)
        elif main_srs[srs_id] != definition:
            msg = f"spatial reference system {srs_id} differs between the files"
            raise MergeUnsupported(msg)

    for layer, sql, rtrees, extra in plans:
        con.execute(sql)
        # no trigger or index yet: SQLite copies the records as they are (its transfer
        # optimisation), and the AUTOINCREMENT counter with them
        con.execute(f"INSERT INTO main.{_quote(layer)} SELECT * FROM side.{_quote(layer)}")
        for rtree, rtree_sql in rtrees:
            con.execute(rtree_sql)  # creates the shadow tables, with an empty root node
            for suffix in ("_node", "_rowid", "_parent"):
                shadow = _quote(rtree + suffix)
                con.execute(f"DELETE FROM main.{shadow}")
                con.execute(f"INSERT INTO main.{shadow} SELECT * FROM side.{shadow}")
        for statement in extra:
            con.execute(statement)
        counters = "SELECT 1 FROM main.sqlite_master WHERE name = 'sqlite_sequence'"
        if "sqlite_sequence" in side_tables and con.execute(counters).fetchone():
            # the AUTOINCREMENT counter as GDAL left it (an empty table has none)
            con.execute("DELETE FROM main.sqlite_sequence WHERE name = ?", (layer,))
            con.execute(
                "INSERT INTO main.sqlite_sequence SELECT * FROM side.sqlite_sequence "
                "WHERE name = ?",
                (layer,),
            )
        for table in _PER_LAYER:
            if table in side_tables:
                con.execute(
                    f"INSERT INTO main.{table} SELECT * FROM side.{table} "
                    "WHERE lower(table_name) = lower(?)",
                    (layer,),
                )


def order_layers(path: Path, names: Sequence[str]) -> None:
    """Put ``gpkg_contents`` in the order ``names`` (GDAL lists layers in its row order).

    Rows of other tables keep their order after them.
    """
    con = connect_temporary(path)
    try:
        con.execute("BEGIN IMMEDIATE")
        cur = con.execute("SELECT * FROM gpkg_contents ORDER BY rowid")
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
        rank = {n.lower(): i for i, n in enumerate(names)}
        ordered = sorted(rows, key=lambda r: rank.get(str(r[0]).lower(), len(rank)))
        if ordered != rows:
            con.execute("DELETE FROM gpkg_contents")
            marks = ", ".join("?" * len(columns))
            cols = ", ".join(_quote(c) for c in columns)
            con.executemany(f"INSERT INTO gpkg_contents ({cols}) VALUES ({marks})", ordered)
        con.execute("COMMIT")
    finally:
        con.close()
