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


def test_match_and_pipeline_run_their_background_work_lower(monkeypatch):
    from mujun_geo import _match_rules as R
    from mujun_geo import stages
    from mujun_geo.datasets import sample_settings
    from mujun_geo.pipeline import run

    seen: dict[str, int] = {}

    def record(name, fn):
        def wrapper(*args, **kwargs):
            seen[name] = _nice()
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(R, "spatial_candidates", record("spatial", R.spatial_candidates))
    monkeypatch.setattr(
        stages, "_floor_area_beside", record("floor_area", stages._floor_area_beside)
    )
    main = _nice()
    res = run(sample_settings(), write=False)
    assert len(res.layers["matches"]) > 1000  # the stages ran on the sample county
    assert seen == {"spatial": min(19, main + NICE), "floor_area": min(19, main + NICE)}
    assert _nice() == main
