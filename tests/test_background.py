"""Background threads (spatial queries beside the name rules, floor area beside matching)
run at a lower CPU priority than the main thread, on Linux."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mujun_geo._background import NICE, lower_priority

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature"
)


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_lower_priority_lowers_the_calling_thread_only():
    main = _nice()
    with ThreadPoolExecutor(1, initializer=lower_priority) as pool:
        worker = pool.submit(_nice).result()
    assert worker == min(19, main + NICE) and worker > main
    assert _nice() == main  # the process and the main thread keep theirs
    with ThreadPoolExecutor(1, initializer=lower_priority, initargs=(0,)) as pool:
        assert pool.submit(_nice).result() == main  # 0 steps: unchanged
    assert lower_priority(0) is False and _nice() == main


def test_match_and_pipeline_run_their_background_work_lower(monkeypatch, tmp_path):
    from mujun_geo import _match_rules as R
    from mujun_geo import stages
    from mujun_geo._fork import can_fork
    from mujun_geo.datasets import sample_settings
    from mujun_geo.pipeline import run

    log = tmp_path / "seen.txt"  # (a child process cannot write into this one's memory)

    def record(name, fn):
        def wrapper(*args, **kwargs):
            with log.open("a") as f:
                f.write(f"{name} {_nice()} {os.getpid()}\n")
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(R, "spatial_candidates", record("spatial", R.spatial_candidates))
    monkeypatch.setattr(
        stages, "_floor_area_beside", record("floor_area", stages._floor_area_beside)
    )
    main = _nice()
    res = run(sample_settings(), write=False)
    assert len(res.layers["matches"]) > 1000  # the stages ran on the sample county
    assert res.layers["parcels"]["floor_area_m2"].sum() > 0  # its result came back
    seen = {
        name: (int(nice), int(pid))
        for name, nice, pid in map(str.split, log.read_text().splitlines())
    }
    assert {k: v[0] for k, v in seen.items()} == {
        "spatial": min(19, main + NICE),
        "floor_area": min(19, main + NICE),
    }
    assert seen["spatial"][1] == os.getpid()  # a thread
    # the floor area in a child process where one can be had, else in a thread
    assert (seen["floor_area"][1] != os.getpid()) == can_fork()
    assert _nice() == main


def test_floor_area_child_gives_what_the_thread_gives(monkeypatch):
    import pandas as pd

    from mujun_geo import stages
    from mujun_geo._fork import can_fork
    from mujun_geo.datasets import sample_settings
    from mujun_geo.pipeline import run

    if not can_fork():
        pytest.skip("forked children on Linux only")
    forked = run(sample_settings(), write=False)
    monkeypatch.setattr(stages._InMemory, "fork_buildings", False)
    threaded = run(sample_settings(), write=False)
    for name in ("parcels", "lowland", "enterprises", "matches", "review"):
        pd.testing.assert_frame_equal(forked.layers[name], threaded.layers[name], check_exact=True)
    assert forked.layers["parcels"]["far"].notna().sum() > 100  # FAR came back from the child
    assert "buildings_background" in forked.info["timings"]
