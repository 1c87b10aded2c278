"""The dask engine gives exactly the in-memory engine's results (LocalCluster, small data).

The reference is the in-memory engine (``match_enterprises``, ``building_metrics``); the
synthetic grid puts points on parcel edges shared by two partitions, in road gaps whose two
nearest parcels lie in different partitions, exactly at ``max_distance`` and far outside, so
every cross-border path of the routing is exercised. A few results are also checked by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import shapely

pytest.importorskip("distributed")

from mujun_geo import distributed as mgd  # noqa: E402
from mujun_geo._errors import ConfigError, DataWarning, MujunGeoError  # noqa: E402
from mujun_geo.buildings import building_metrics  # noqa: E402
from mujun_geo.matching import match_enterprises  # noqa: E402

X0, Y0 = 500_000.0, 3_300_000.0  # realistic Gauss-Krüger magnitudes (EPSG:4549)
N = 45  # 45 × 45 = 2025 parcels
K = 7  # partitions


@pytest.fixture(scope="module")
def client():
    with mgd.get_client(threads_per_worker=2) as c:
        yield c


def _pid(i, j):
    return np.char.add(np.char.add("P", np.char.zfill(np.asarray(i).astype(str), 3)),
                       np.char.zfill(np.asarray(j).astype(str), 3))  # fmt: skip


def grid_parcels() -> gpd.GeoDataFrame:
    """100 m cells; parcels 90 m wide (100 m for odd columns, so they touch the next column),
    90 m high (10 m road gaps between rows)."""
    i, j = (a.ravel() for a in np.meshgrid(np.arange(N), np.arange(N), indexing="ij"))
    x1 = X0 + 100 * i
    width = np.where(i % 2 == 1, 100.0, 90.0)
    geom = shapely.box(x1, Y0 + 100 * j, x1 + width, Y0 + 100 * j + 90)
    land_use = np.where((i * 7 + j * 3) % 10 == 0, "0701", "0601")
    holder = np.where((i + 2 * j) % 11 == 0, np.char.add("宏达", (i % 13).astype(str)), None)
    return gpd.GeoDataFrame(
        {
            "parcel_id": _pid(i, j),
            "land_use": land_use,
            "holder_name": holder,
            "region_code": "330481",
            "grade": np.array(["A", "B", "C", None], dtype=object)[(i + j) % 4],
            "in_park": pd.array(
                np.array([True, False, None], dtype=object)[j % 3], dtype="boolean"
            ),  # fmt: skip
            "i": i,
            "j": j,
        },
        geometry=geom,
        crs=4549,
    )


def partition_of(client, parcels: gpd.GeoDataFrame) -> np.ndarray:
    """Partition number of each parcel position, as the dask engine makes them."""
    keys = gpd.GeoDataFrame(
        {"_pj": np.arange(len(parcels)), "_ind": parcels["land_use"].eq("0601").to_numpy()},
        geometry=parcels.geometry.values,
        crs=parcels.crs,
    )
    parts = mgd._Partitions(client, keys, K)
    out = np.full(len(parcels), -1)
    for k, part in enumerate(client.gather(parts.futures)):
        out[part["_pj"].to_numpy()] = k
    return out


def grid_firms(parcels: gpd.GeoDataFrame, part: np.ndarray) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    pos = {(a, b): n for n, (a, b) in enumerate(zip(parcels["i"], parcels["j"]))}
    xs, ys = [], []

    def add(x, y):
        x, y = np.broadcast_arrays(x, y)
        xs.extend(np.ravel(x).tolist())
        ys.extend(np.ravel(y).tolist())

    # 1. inside parcels
    i, j = rng.integers(0, N, 500), rng.integers(0, N, 500)
    add(X0 + 100 * i + rng.uniform(1, 89, 500), Y0 + 100 * j + rng.uniform(1, 89, 500))
    # 2. on the shared edge of an odd column and the next one, first where partitions differ
    pairs = [(a, b) for a in range(1, N - 1, 2) for b in range(N)]
    cross = [p for p in pairs if part[pos[p]] != part[pos[(p[0] + 1, p[1])]]]
    same = [p for p in pairs if part[pos[p]] == part[pos[(p[0] + 1, p[1])]]][::10]
    for a, b in cross + same:
        add(X0 + 100 * (a + 1), Y0 + 100 * b + rng.uniform(0, 90))
    # 3. in the middle of a road gap: 5 m from the parcel below and above (a tie)
    rows = [(a, b) for a in range(N) for b in range(N - 1)]
    cross_v = [p for p in rows if part[pos[p]] != part[pos[(p[0], p[1] + 1)]]]
    for a, b in cross_v + rows[::25]:
        add(X0 + 100 * a + rng.uniform(0, 90), Y0 + 100 * b + 95)
    # 4. in a vertical gap between an even column and the odd one right of it (5 m each)
    for a, b in [(a, b) for a in range(0, N - 1, 2) for b in range(0, N, 4)]:
        add(X0 + 100 * a + 95, Y0 + 100 * b + rng.uniform(0, 90))
    # 5. outside the grid: exactly max_distance (50 m), 20–45 m, and far (unmatched)
    add(X0 - 50.0, Y0 + 100 * np.arange(0, N, 5) + 30)
    add(X0 + rng.uniform(0, 100 * N, 40), Y0 - rng.uniform(20, 45, 40))
    add(X0 + 100 * N + rng.uniform(60, 900, 40), Y0 + rng.uniform(0, 100 * N, 40))
    n = len(xs)
    geom = shapely.points(xs, ys)
    names = np.char.add("新星", np.arange(n).astype(str)).astype(object)
    names[:13] = np.char.add("宏达", np.arange(13).astype(str))  # code/name vs location
    firms = gpd.GeoDataFrame(
        {
            "credit_code": np.char.add("C", np.char.zfill(np.arange(n).astype(str), 5)),
            "name": names,
            "region_code": "330481",
        },
        geometry=geom,
        crs=4549,
    )
    nogeo = gpd.GeoDataFrame(
        {"credit_code": ["N0001", "N0002"], "name": ["宏达3", "无坐标"], "region_code": "330481"},
        geometry=[None, None],
        crs=4549,
    )
    return pd.concat([firms, nogeo], ignore_index=True)


def grid_buildings(parcels: gpd.GeoDataFrame, firms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(11)
    m = 2500
    i, j = rng.integers(0, N, m), rng.integers(0, N, m)
    x = X0 + 100 * i + rng.uniform(0, 70, m)
    y = Y0 + 100 * j + rng.uniform(0, 70, m)
    w, h = rng.uniform(5, 40, m), rng.uniform(5, 30, m)
    geoms = shapely.box(x, y, x + w, y + h)  # many overlap, some reach over an edge or gap
    floors = rng.integers(1, 7, m).astype(float)
    height = np.where(rng.random(m) < 0.3, rng.uniform(3, 30, m), np.nan)
    floors[rng.random(m) < 0.3] = np.nan  # from height, or default (warned)
    use = np.array(["production", "warehouse", "office", "living"], dtype=object)[
        rng.integers(0, 4, m)
    ]
    occ = firms["credit_code"].to_numpy(dtype=object)[rng.integers(0, len(firms), m)]
    occ[rng.random(m) < 0.2] = None
    # office blocks straddling the shared edge of columns 1|2 (one per row)
    extra = [shapely.box(X0 + 180, Y0 + 100 * b + 10, X0 + 220, Y0 + 100 * b + 40)
             for b in range(N)]  # fmt: skip
    n_extra = len(extra)
    return gpd.GeoDataFrame(
        {
            "building_id": np.arange(m + n_extra).astype(str),
            "floors": np.r_[floors, np.full(n_extra, 3.0)],
            "height_m": np.r_[height, np.full(n_extra, 30.0)],  # 10 m storeys: tall
            "use": np.r_[use, np.full(n_extra, "office", dtype=object)],
            "occupant_code": np.r_[occ, np.full(n_extra, "C00001", dtype=object)],
        },
        geometry=np.r_[geoms, np.array(extra, dtype=object)],
        crs=4549,
    )


@pytest.fixture(scope="module")
def grid(client):
    parcels = grid_parcels()
    part = partition_of(client, parcels)
    firms = grid_firms(parcels, part)
    buildings = grid_buildings(parcels, firms)
    return parcels, firms, buildings, part


def assert_same(a, b):
    for name in ("matches", "enterprises", "parcels", "problems"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


# ---------------------------------------------------------------------------------------------
# the grid


def test_grid_exercises_partition_borders(grid):
    parcels, firms, _, part = grid
    assert len(parcels) == 2025 and len(np.unique(part)) == K
    pts = firms.geometry.to_numpy()
    ok = np.flatnonzero(~shapely.is_missing(pts))
    # points covered by two parcels that lie in different partitions
    q = parcels.sindex.query(pts[ok], predicate="covered_by")
    by_pt = pd.DataFrame({"f": q[0], "k": part[q[1]]}).groupby("f")["k"].nunique()
    assert (by_pt > 1).sum() >= 15
    # gap points 5 m from two parcels (a tie) that lie in different partitions
    x, y = shapely.get_x(pts[ok]), shapely.get_y(pts[ok])
    gap = (y - Y0) % 100 == 95
    a, b = ((x[gap] - X0) // 100).astype(int), ((y[gap] - Y0) // 100).astype(int)
    assert (part[a * N + b] != part[a * N + b + 1]).sum() >= 30


@pytest.mark.parametrize(
    ("land_mode", "k"), [("parcel", K), ("holder", K), ("floor_area", K), ("parcel", 31)]
)
def test_grid_matching_equals_in_memory(client, grid, land_mode, k):
    parcels, firms, buildings, _ = grid
    # reject the smaller-id parcel of two gap ties, and one covering parcel: the rules must
    # then pick the other candidate in both engines
    overrides = pd.DataFrame(
        {
            "credit_code": ["C00005", "C01000", "C01001"],
            "parcel_id": ["P000000", "P000000", "P000001"],
            "action": ["reject", "reject", "reject"],
        }
    )
    kw = dict(land_mode=land_mode, overrides=overrides)
    if land_mode == "floor_area":
        kw["buildings"] = buildings
    mem = match_enterprises(firms, parcels, **kw)
    dsk = mgd.match_enterprises_dask(firms, parcels, client=client, npartitions=k, **kw)
    assert_same(mem, dsk)
    assert mem.summary()["links_by_method"]["nearest"] > 200


def test_grid_hand_checked(client, grid):
    parcels, firms, _, _ = grid
    res = mgd.match_enterprises_dask(firms, parcels, client=client, npartitions=K)
    m = res.matches.set_index("credit_code")
    e = res.enterprises.set_index(firms["credit_code"])
    pts = firms.geometry
    # a point 50 m left of column 0 (x = X0 - 50) level with P000005 (industrial: 0·7 + 5·3 =
    # 15, not a multiple of 10): nearest at exactly max_distance, inclusive, confidence
    # 0.8 - 0.3 * 50 / 50 = 0.5
    left = firms["credit_code"][(pts.x == X0 - 50) & (pts.y == Y0 + 530)].item()
    assert m.loc[left, ["parcel_id", "method", "distance_m"]].tolist() == [
        "P000005", "nearest", 50.0]  # fmt: skip
    assert m.loc[left, "confidence"] == pytest.approx(0.5)
    # a gap point 5 m from both P(a,b) and P(a,b+1): tie -> smaller parcel_id P(a,b)
    gap = firms[(pts.y - Y0) % 100 == 95].iloc[0]
    a, b = int((gap.geometry.x - X0) // 100), int((gap.geometry.y - Y0) // 100)
    assert m.loc[gap["credit_code"], "parcel_id"] == f"P{a:03d}{b:03d}"
    assert m.loc[gap["credit_code"], "distance_m"] == 5.0
    # a point on the shared edge of odd column a and a + 1: both cover it, neither holds it
    # in its interior, both industrial -> the larger (100 × 90 = 9000 m² > 90 × 90) wins
    edge = firms[((pts.x - X0) % 200 == 0) & (pts.x > X0) & ((pts.y - Y0) % 100 < 90)]
    a = ((edge.geometry.x - X0) // 100).astype(int) - 1
    b = ((edge.geometry.y - Y0) // 100).astype(int)
    both = ((a * 7 + b * 3) % 10 != 0) & (((a + 1) * 7 + b * 3) % 10 != 0)  # both 0601
    got = m.loc[edge["credit_code"][both], "parcel_id"].tolist()
    assert len(got) > 50 and got == list(_pid(a[both], b[both]))
    # far right of the grid: unmatched, nearest distance = x - (X0 + 100 N - 10), the right
    # edge of the last (even, 90 m wide) column, when the point is level with a parcel
    far = firms[(pts.x > X0 + 100 * N + 60) & ((pts.y - Y0) % 100 < 90)].iloc[0]
    want = far.geometry.x - (X0 + 100 * (N - 1) + 90)
    assert e.loc[far["credit_code"], "match_status"] == "unmatched"
    assert e.loc[far["credit_code"], "nearest_distance_m"] == pytest.approx(want, abs=1e-9)


def test_grid_building_metrics_equal_in_memory(client, grid):
    parcels, _, buildings, _ = grid
    bow = shapely.Polygon([(X0 + 10, Y0 + 10), (X0 + 30, Y0 + 30), (X0 + 30, Y0 + 10),
                           (X0 + 10, Y0 + 30)])  # fmt: skip  # invalid: repaired with a warning
    bow = gpd.GeoDataFrame({"building_id": ["bow"], "floors": [2.0]}, geometry=[bow], crs=4549)
    buildings = pd.concat([buildings, bow], ignore_index=True)
    kw = dict(ancillary_cap_floor=0.2, raised_cap_min_mu=10.0)
    with pytest.warns(DataWarning) as rec_mem:
        mem = building_metrics(parcels, buildings, **kw)
    with pytest.warns(DataWarning) as rec_dsk:
        dsk = mgd.building_metrics_dask(parcels, buildings, client=client, npartitions=K, **kw)
    # the same two warnings, once each: invalid footprint repaired; buildings without floors
    assert [str(w.message) for w in rec_dsk] == [str(w.message) for w in rec_mem]
    assert len(rec_dsk) == 2
    pd.testing.assert_frame_equal(mem, dsk, check_exact=True)
    assert (dsk["ancillary_over_cap"]).sum() > 50 and (dsk["n_buildings"] > 1).sum() > 500


def test_building_straddling_two_partitions_by_hand(client):
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["P1", "P2"]},
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
        crs=4549,
    )
    buildings = gpd.GeoDataFrame(
        {"floors": [2.0, 4.0]},
        geometry=[shapely.box(50, 0, 150, 20), shapely.box(140, 0, 160, 10)],
        crs=4549,
    )
    m = mgd.building_metrics_dask(parcels, buildings, client=client, npartitions=2)
    # P1: A's left half 50 × 20 = 1000 m² × 2 floors = 2000 m²; FAR 2000 / 10 000 = 0.2
    # P2: A's right half 1000 m² and B 200 m² overlap on 10 × 10 = 100 m²: footprint 1100 m²;
    #     floor area counts the overlap once at B's 4 floors: 200 × 4 + (1000 - 100) × 2 = 2600
    assert m["footprint_m2"].tolist() == [1000.0, 1100.0]
    assert m["floor_area_m2"].tolist() == [2000.0, 2600.0]
    assert m["far"].tolist() == [0.2, 0.26]
    assert m["n_buildings"].tolist() == [1, 2]
    assert m.index.equals(parcels.index)


def test_parcels_without_geometry_and_bad_options(client):
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["P1", "P2"], "land_use": ["0601", "0601"]},
        geometry=[shapely.box(0, 0, 100, 100), None],
        crs=4549,
    )
    buildings = gpd.GeoDataFrame({"floors": [2.0]}, geometry=[shapely.box(0, 0, 10, 10)], crs=4549)
    m = mgd.building_metrics_dask(parcels, buildings)  # client=None: the default client
    # 10 × 10 m × 2 floors = 200 m² on P1 (area 10 000 m²); P2 has no geometry
    assert m["floor_area_m2"].tolist() == [200.0, 0.0]
    assert m["far"].iloc[0] == 0.02 and np.isnan(m["far"].iloc[1])
    with pytest.raises(TypeError, match="max_dist"):
        mgd.match_enterprises_dask(parcels.iloc[:0], parcels, client=client, max_dist=5)
    with pytest.raises(ConfigError, match="npartitions"):
        mgd.building_metrics_dask(parcels, buildings, client=client, npartitions=0)


def test_get_client_bad_address():
    with pytest.raises(MujunGeoError, match="dask scheduler"):
        mgd.get_client("tcp://127.0.0.1:1", timeout=0.5)


# ---------------------------------------------------------------------------------------------
# the sample county


@pytest.fixture(scope="module")
def sample():
    from mujun_geo.datasets import get_path
    from mujun_geo.io import read_buildings, read_enterprises, read_overrides, read_parcels

    parcels = read_parcels(get_path("parcels"))
    firms = read_enterprises(get_path("enterprises"), target_crs=parcels.crs)
    buildings = read_buildings(get_path("buildings"), target_crs=parcels.crs)
    overrides = read_overrides(get_path("overrides"))
    return parcels, firms, buildings, overrides


@pytest.mark.parametrize("land_mode", ["parcel", "floor_area"])
def test_sample_matching_equals_in_memory(client, sample, land_mode):
    parcels, firms, buildings, overrides = sample
    kw = dict(overrides=overrides, land_mode=land_mode, buildings=buildings)
    mem = match_enterprises(firms, parcels, **kw)
    dsk = mgd.match_enterprises_dask(firms, parcels, client=client, npartitions=5, **kw)
    assert_same(mem, dsk)


def test_sample_building_metrics_equal_in_memory(client, sample):
    parcels, _, buildings, _ = sample
    mem = building_metrics(parcels, buildings)
    dsk = mgd.building_metrics_dask(parcels, buildings, client=client, npartitions=5)
    pd.testing.assert_frame_equal(mem, dsk, check_exact=True)
    assert (mem["n_buildings"] > 0).sum() > 100
