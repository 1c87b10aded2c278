"""The grid scan of points inside boxes, against hand-worked cases and GEOS's STRtree."""

import numpy as np
import pytest

import shapely

from mujun_geo import _envelope as E
from mujun_geo._envelope import box_points


def as_set(pairs) -> set[tuple[int, int]]:
    return set(zip(pairs[0].tolist(), pairs[1].tolist()))


def tree_pairs(boxes: np.ndarray, x: np.ndarray, y: np.ndarray, pad: float) -> set:
    """The same question answered by GEOS: the grown boxes' tree queried with the points."""
    grown = shapely.box(boxes[:, 0] - pad, boxes[:, 1] - pad, boxes[:, 2] + pad, boxes[:, 3] + pad)
    pt, bx = shapely.STRtree(grown).query(shapely.points(x, y), predicate="intersects")
    return set(zip(bx.tolist(), pt.tolist()))


def test_hand_worked_boxes_with_edges_pad_and_missing_values():
    boxes = np.array(
        [
            [0.0, 0.0, 10.0, 10.0],
            [10.0, 0.0, 20.0, 10.0],  # shares the edge x = 10 with box 0
            [np.nan] * 4,  # a missing parcel
            [100.0, 100.0, 100.0, 100.0],  # a box of one point
        ]
    )
    x = np.array([5.0, 10.0, 20.0, 25.0, np.nan, 100.0, 103.0])
    y = np.array([5.0, 10.0, 0.0, 5.0, 5.0, 100.0, 104.0])
    # (10, 10) is a corner of boxes 0 and 1; (20, 0) a corner of box 1; (25, 5) is outside
    assert as_set(box_points(boxes, x, y)) == {(0, 0), (0, 1), (1, 1), (1, 2), (3, 5)}
    # grown by 5 m: (25, 5) lies on box 1's grown east side; (103, 104) lies in the 10 m
    # square that box 3 grows to (a square, not a circle); (5, 5) reaches box 1
    got = as_set(box_points(boxes, x, y, pad=5.0))
    assert got == {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3), (3, 5), (3, 6)}
    assert (1, 3) not in as_set(box_points(boxes, x, y, pad=4.999))


def test_pairs_come_grouped_by_box_in_box_order():
    rng = np.random.default_rng(3)
    lo = rng.uniform(0, 1000, (500, 2))
    boxes = np.c_[lo, lo + rng.uniform(1, 80, (500, 2))]
    x, y = rng.uniform(0, 1100, (2, 4000))
    bx, pt = box_points(boxes, x, y)
    assert len(bx) > 1000
    assert (np.diff(bx) >= 0).all()
    assert len(set(zip(bx.tolist(), pt.tolist()))) == len(bx)  # no pair twice


@pytest.mark.parametrize("pad", [0.0, 7.5])
def test_same_pairs_as_the_strtree_on_odd_data(pad):
    # boxes of very different sizes (one covers everything, some are segments or points),
    # clustered points with duplicates, missing values on both sides
    rng = np.random.default_rng(11)
    lo = rng.uniform(-500, 500, (3000, 2))
    size = rng.choice([0.0, 0.5, 5.0, 50.0, 400.0], (3000, 2))
    boxes = np.c_[lo, lo + size]
    boxes[0] = [-1e6, -1e6, 1e6, 1e6]
    boxes[5:20] = np.nan
    x = np.r_[rng.uniform(-600, 600, 5000), np.full(300, 12.25), rng.normal(0, 3, 700)]
    y = np.r_[rng.uniform(-600, 600, 5000), np.full(300, -7.5), rng.normal(0, 3, 700)]
    x[:10] = np.nan
    y[20] = np.inf  # no pairs, and the grid must not stretch to it
    x[10:20] = np.round(x[10:20])  # some on box edges
    got = box_points(boxes, x, y, pad=pad)
    ok = ~np.isnan(x)
    want = tree_pairs(boxes[~np.isnan(boxes[:, 0])], x[ok], y[ok], pad)
    real_b, real_p = np.flatnonzero(~np.isnan(boxes[:, 0])), np.flatnonzero(ok)
    want = {(int(real_b[b]), int(real_p[p])) for b, p in want}
    assert as_set(got) == want
    assert len(got[0]) == len(want) > 10_000


def test_threads_give_the_same_pairs_in_the_same_order(monkeypatch):
    monkeypatch.setattr(E, "_THREAD_MIN", 1)
    rng = np.random.default_rng(5)
    lo = rng.uniform(0, 5000, (2001, 2))
    boxes = np.c_[lo, lo + 30.0]
    x, y = rng.uniform(0, 5000, (2, 3000))
    one = box_points(boxes, x, y, pad=10.0, threads=1)
    for threads in (2, 3):
        many = box_points(boxes, x, y, pad=10.0, threads=threads)
        assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])


def test_max_pairs_gives_up_only_beyond_the_cap():
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    x = np.array([1.0, 6.0, 7.0, 14.0])
    y = np.array([1.0, 6.0, 7.0, 14.0])
    # box 0 holds points 0, 1, 2; box 1 holds 1, 2, 3: six pairs
    assert box_points(boxes, x, y, max_pairs=5) is None
    assert len(box_points(boxes, x, y, max_pairs=6)[0]) == 6


def test_points_on_a_line_keep_the_grid_small():
    # all points on one horizontal line 1e6 m long: the grid must not grow to w * h / area
    x = np.linspace(0, 1e6, 10_001)
    y = np.zeros_like(x)
    boxes = np.array([[-1.0, -1.0, 150.0, 1.0], [999_950.0, 0.0, 2e6, 0.0]])
    _, _, size, nx, ny = E._cell_size(boxes, x, y, np.ones(len(x), dtype=bool), 0.0)
    assert nx * ny <= 4 * len(x) + 1024
    got = box_points(boxes, x, y)
    # spacing 100 m: x = 0 and 100 in box 0; x = 1e6 in box 1
    assert as_set(got) == {(0, 0), (0, 1), (1, 10_000)}


def test_nothing_to_pair():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0]])
    for pair in (
        box_points(boxes, np.array([np.nan]), np.array([np.nan])),
        box_points(boxes, np.array([0.5, np.nan]), np.array([np.nan, 0.5])),  # half missing
        box_points(boxes, np.array([np.inf]), np.array([0.5])),
        box_points(np.empty((0, 4)), np.array([0.5]), np.array([0.5])),
        box_points(boxes, np.array([5.0]), np.array([5.0])),
    ):
        assert pair[0].dtype == np.int64 and len(pair[0]) == len(pair[1]) == 0


def test_dense_cells_are_searched_along_their_longer_side():
    # 2,000 firms on a north-south street (one x), 2,000 on an east-west one (one y) and
    # 2,000 at one fallback address, among 2,000 spread points, with small boxes among them:
    # the pairs must still be exactly the tree's
    rng = np.random.default_rng(21)
    x = np.r_[np.full(2000, 50.0), rng.uniform(0, 400, 2000), np.full(2000, 300.0),
              rng.uniform(-5000, 5000, 2000)]  # fmt: skip
    y = np.r_[rng.uniform(0, 400, 2000), np.full(2000, 120.0), np.full(2000, 300.0),
              rng.uniform(-5000, 5000, 2000)]  # fmt: skip
    lo = rng.uniform(-10, 410, (3000, 2))
    boxes = np.c_[lo, lo + rng.uniform(0, 3, (3000, 2))]
    boxes[:3] = [[49, 10, 51, 11], [10, 119, 11, 121], [299, 299, 301, 301]]
    # boxes whose edges fall exactly on a street point, along the street's sorted side
    boxes[3:7] = [[x[2005], 119, x[2005] + 1, 120], [x[2006] - 1, 120, x[2006], 121],
                  [50, y[7], 51, y[7] + 1], [49, y[8] - 1, 50, y[8]]]  # fmt: skip
    got = box_points(boxes, x, y)
    assert as_set(got) == tree_pairs(boxes, x, y, 0.0)
    assert np.isin([0, 1, 2], got[0]).all()
    assert {(3, 2005), (4, 2006), (5, 7), (6, 8)} <= as_set(got)
    # the street cells are sorted along the street, the others by their wider side
    x0, y0, size, nx, ny = E._cell_size(boxes, x, y, np.ones(len(x), dtype=bool), 0.0)
    starts, order, sx, sy = E._grid(x, y, x0, y0, size, nx, ny)
    by_y = E._sort_dense(starts, order, sx, sy)
    dense = np.diff(starts) > E._DENSE
    cell = ((y[:1] - y0) // size).astype(int) * nx + ((x[:1] - x0) // size).astype(int)
    assert dense[cell].all() and by_y[cell].all()  # the north-south street
    cell = ((y[2000:2001] - y0) // size).astype(int) * nx + ((x[2000:2001] - x0) // size).astype(
        int
    )
    assert dense[cell].all() and not by_y[cell].any()  # the east-west street


def test_infinite_boxes_and_pad():
    one = (np.array([1.0]), np.array([1.0]))
    assert as_set(box_points(np.array([[0.0, 0, np.inf, np.inf]]), *one)) == {(0, 0)}
    assert as_set(box_points(np.array([[5.0, 5, 6, 6]]), *one, pad=np.inf)) == {(0, 0)}


def test_compiles_without_a_writable_cache():
    # with no cache locator (as with a read-only install and home) numba refuses cache=True
    # at import; the loops must still compile and answer
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from mujun_geo._envelope import box_points\n"
        "b = box_points(np.array([[0.0, 0, 2, 2]]), np.array([1.0, 3]), np.array([1.0, 1]))\n"
        "print([a.tolist() for a in b])\n"
    )
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "numba.core.caching.IPythonCacheLocator"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[[0], [0]]"
