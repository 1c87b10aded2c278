"""Synthetic province for benchmarks: parcels, firms, buildings, parks and regions.

Usage::

    python scripts/make_province.py --parcels 1000000 --workdir /tmp/mujun-bench

or from Python (``scripts/`` on ``sys.path``)::

    from make_province import make_province, write_province
    layers = make_province(100_000)
    paths = write_province(layers, "/tmp/mujun-bench/p100000")

Layout (EPSG:4549, CGCS2000 3-degree Gauss-Krüger CM 120E, metres):

* 94 county blocks (the county names of :data:`mujun_geo.names.ZHEJIANG_PLACES`) laid out
  10 to a row, 1 km apart. Each block is a square grid of 120 m cells; every cell holds one
  rectangular parcel 60–110 m a side placed at least 5 m from the cell edges, so parcels
  never overlap and roads (gaps) of at least 10 m separate them. With ``--shape irregular``
  each rectangle becomes a polygon of 13–21 vertices, each moved by up to 2 m
  (:func:`irregular`), as surveyed parcels are; ``--shape jagged`` (25–45 vertices) is a
  stress case. The folder is then ``p<N>-irregular`` or ``p<N>-jagged``.
* Parcels: 80 % 0601 工业, 2 % 0602, 5 % 0508, the rest commercial, residential or road.
  ``ZDDM`` is the 19-character GB/T 13923 form (county code + block + ``GB`` + serial).
* Firms (default half the parcels): 75 % inside an industrial parcel (several firms may share
  one), 20 % in the road gap next to an industrial parcel (5–55 m from it: the nearest rule),
  3 % 100–300 m outside the county block (unmatched), 2 % without coordinates. Coordinates
  are lon/lat in WGS84 (70 %), GCJ-02 (20 %) or BD-09 (10 %) with a 坐标系 column, as staff
  export them from geocoders. Names are ``<county><字号><行业词><有限公司>`` with 2–4 random
  syllables; credit codes are valid GB 32100 codes of the firm's county.
* Parcel holders (权利人): on a parcel with firms, 85 % the first firm's name (5 % of those a
  variant one character longer, for the fuzzy rule), the rest a landlord not in the list;
  35 % of firm-held parcels also carry the firm's code. Parcels without firms: a landlord
  (80 %) or nothing.
* Buildings (default twice the parcels): 85 % on industrial parcels, laid side by side in
  strips, 5 % reaching 3 m over the parcel edge (clipped), 1 % overlapping a neighbour
  (counted once); floors 1–6 (70 %), else height (25 %), else nothing.
* Parks: two per county (lower-left and upper-right quarter of the block); regions: counties
  (block + 400 m) and the 11 cities (union of their counties).

Everything is vectorised (shapely 2 arrays, numpy strings); a million parcels take a few
seconds to make and about half a minute to write.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from pyproj import Transformer

# the checkout this script lives in, whatever copy is installed
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mujun_geo.coords import wgs84_to_bd09, wgs84_to_gcj02
from mujun_geo.creditcode import ALPHABET, make_credit_code
from mujun_geo.names import ZHEJIANG_PLACES

__all__ = ["county_table", "credit_codes", "make_province", "write_province", "main"]

logger = logging.getLogger(__name__)

CRS = 4549
PITCH = 120.0  # metres between parcel cells
COUNTY_GAP = 1000.0  # metres between county blocks
ORIGIN = (430_000.0, 3_170_000.0)  # lower-left corner of the province, EPSG:4549

SYLLABLES = np.array(list(
    "华泰恒达鑫宏盛隆兴源嘉诚信新永安利丰瑞祥和美佳联合中天成金海星光明东方正通远大博创"
    "科凯荣昌富康健力顺威龙腾飞越亚欧德润泽汇聚鼎豪锦绣万家同心协立辉煌振宇晨阳昊宁思远"
    "精工艺峰伟业君亨仁义礼智宝丽雅洁清凌云帆舟航骏驰奥特维尔邦杰灵秀俊逸"
))  # fmt: skip
INDUSTRY_WORDS = np.array([
    "科技", "机械", "机械制造", "纺织", "电子", "电子科技", "新材料", "化工", "服饰", "五金制品",
    "塑业", "电器", "汽车部件", "印染", "家具", "光电", "精密机械", "食品", "包装", "医疗器械",
])  # fmt: skip
LANDLORD_WORDS = np.array(["置业", "实业", "投资", "开发", "物业", "资产经营"])
SUFFIXES = np.array(["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司"])
INDUSTRY_DIVISIONS = np.arange(13, 44)  # GB/T 4754-2017 manufacturing 大类


# ---------------------------------------------------------------------------------------------
# helpers


def county_table() -> pd.DataFrame:
    """Counties of the province: ``region_code`` (6 digits), ``name``, ``city_code``, ``city``.

    County codes are ``33CC`` + a two-digit serial from 02 (plausible, not the official list).
    """
    rows = []
    for city_code, (city, counties) in ZHEJIANG_PLACES.items():
        for k, name in enumerate(counties):
            rows.append((f"{city_code}{k + 2:02d}", name, f"{city_code}00", city))
    return pd.DataFrame(rows, columns=["region_code", "name", "city_code", "city"])


def credit_codes(region_codes: np.ndarray, serials: np.ndarray) -> np.ndarray:
    """Vectorised :func:`mujun_geo.creditcode.make_credit_code` (authority 9, kind 1).

    ``region_codes`` are 6-digit strings, ``serials`` non-negative integers below 31**9.
    """
    region_codes = np.asarray(region_codes, dtype="<U6")
    serials = np.asarray(serials, dtype=np.int64)
    n = len(serials)
    digits = np.empty((n, 17), dtype=np.int64)
    digits[:, 0], digits[:, 1] = 9, 1
    region_int = region_codes.astype(np.int64)
    for k in range(6):
        digits[:, 2 + k] = region_int // 10 ** (5 - k) % 10
    rest = serials.copy()
    for k in range(8, -1, -1):
        digits[:, 8 + k] = rest % 31
        rest //= 31
    weights = np.array([pow(3, i, 31) for i in range(17)])
    check = (31 - (digits @ weights) % 31) % 31
    alphabet = np.array(list(ALPHABET))
    chars = np.concatenate([alphabet[digits], alphabet[check][:, None]], axis=1)
    return np.ascontiguousarray(chars).view("<U18").ravel()


def _concat(*parts: object) -> np.ndarray:
    """Element-wise string concatenation of arrays/scalars (pandas string kernels)."""
    out = None
    for p in parts:
        s = pd.Series(p, dtype="str") if not isinstance(p, str) else p
        out = s if out is None else out + s
    return np.asarray(out, dtype=object)


def _syllables(rng: np.random.Generator, n: int, lo: int = 2, hi: int = 4) -> np.ndarray:
    """Random 字号 of ``lo``–``hi`` syllables."""
    length = rng.integers(lo, hi + 1, n)
    pick = rng.integers(0, len(SYLLABLES), (n, hi))
    chars = SYLLABLES[pick]
    chars[np.arange(hi)[None, :] >= length[:, None]] = ""
    return _concat(*[chars[:, k] for k in range(hi)])


def _cells(n: int, n_counties: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """County of each parcel and the lower-left corner of its cell; also the block side."""
    per = -(-n // n_counties)
    side = int(np.ceil(np.sqrt(per)))
    i = np.arange(n)
    county, local = i // per, i % per
    block = side * PITCH + COUNTY_GAP
    x = ORIGIN[0] + (county % 10) * block + (local % side) * PITCH
    y = ORIGIN[1] + (county // 10) * block + (local // side) * PITCH
    return county, x, y, side


# ---------------------------------------------------------------------------------------------
# the province


#: Vertex spacing (m) along the parcel edges of the non-rectangular shapes.
SHAPE_STEPS = {"irregular": 25.0, "jagged": 10.0}


def irregular(
    rects: np.ndarray, *, seed: int = 0, step: float = 25.0, sd: float = 0.7, limit: float = 2.0
) -> np.ndarray:
    """Rectangles as surveyed parcels: a vertex every `step` m along the edges, each moved.

    Real 宗地 boundaries have tens of vertices and no axis-aligned edges; rectangles let GEOS
    and DuckDB take shortcuts a county's data never allows. Each vertex moves by a normal
    offset (`sd` m, cut at ±`limit` m), so firms placed 6 m or more inside a rectangle stay
    inside. A shape whose moved ring would cross itself keeps its rectangle. A separate
    random stream: the other layers are the same as with rectangles.

    Examples
    --------
    >>> r = irregular(shapely.box([0.0], [0.0], [100.0], [60.0]))[0]
    >>> int(shapely.get_num_coordinates(r)), bool(shapely.is_valid(r)), round(r.area / 6000, 2)
    (15, True, 1.0)
    """
    rng = np.random.default_rng(seed)
    dense = shapely.segmentize(np.asarray(rects, dtype=object), step)
    xy = shapely.get_coordinates(dense)
    xy += np.clip(rng.normal(0.0, sd, xy.shape), -limit, limit)
    last = np.cumsum(shapely.get_num_coordinates(dense)) - 1
    first = np.r_[0, last[:-1] + 1]
    xy[last] = xy[first]  # rings stay closed
    moved = shapely.set_coordinates(dense, xy)
    return np.where(shapely.is_valid(moved), moved, rects)


def make_province(
    n_parcels: int = 1_000_000,
    n_firms: int | None = None,
    n_buildings: int | None = None,
    *,
    seed: int = 0,
    shape: str = "rectangle",
) -> dict[str, pd.DataFrame]:
    """Build the synthetic province in memory.

    `shape` ``"irregular"`` turns each parcel rectangle into a polygon of 13–21 vertices,
    ``"jagged"`` into one of 25–45 (:func:`irregular` with a vertex every 25 or 10 m);
    everything else is the same as with rectangles.

    Returns
    -------
    dict
        ``parcels``, ``buildings``, ``parks``, ``regions`` (GeoDataFrames in EPSG:4549, with
        the source field names a county would deliver) and ``enterprises`` (a DataFrame with
        the Chinese headers of an enterprise list, lon/lat coordinates).
    """
    n_firms = n_parcels // 2 if n_firms is None else n_firms
    n_buildings = 2 * n_parcels if n_buildings is None else n_buildings
    rng = np.random.default_rng(seed)
    counties = county_table()
    n_c = len(counties)
    county_codes = counties["region_code"].to_numpy(dtype="<U6")
    county_names = counties["name"].to_numpy(dtype=object)

    # STEP 1: parcels — one rectangle per 120 m cell, 5 m or more from the cell edges
    county, cx, cy, side = _cells(n_parcels, n_c)
    w = rng.uniform(60, 110, n_parcels)
    h = rng.uniform(60, 110, n_parcels)
    x0 = cx + rng.uniform(5, PITCH - 5 - w)
    y0 = cy + rng.uniform(5, PITCH - 5 - h)
    pgeom = shapely.box(x0, y0, x0 + w, y0 + h)
    if shape != "rectangle":
        if shape not in SHAPE_STEPS:
            msg = f"shape must be 'rectangle' or one of {list(SHAPE_STEPS)}, got {shape!r}"
            raise ValueError(msg)
        pgeom = irregular(pgeom, seed=seed + 7, step=SHAPE_STEPS[shape])
    land_use = rng.choice(
        np.array(["0601", "0602", "0508", "05H1", "0701", "1004"]),
        n_parcels,
        p=[0.80, 0.02, 0.05, 0.05, 0.05, 0.03],
    )
    industrial = np.isin(land_use, ["0601", "0602", "0508"])
    local = np.arange(n_parcels) - np.searchsorted(county, county)
    pcode = county_codes[county]
    parcel_id = _concat(
        pcode,
        pd.Series(local // 1000 + 1).astype(str).str.zfill(6),
        "GB",
        pd.Series(local % 100_000 + 1).astype(str).str.zfill(5),
    )
    # local // 1000 makes the block part; GB + 5 digits repeat every 100,000 parcels of a
    # county, which the block number keeps unique up to 1e8 parcels per county
    assert pd.Series(parcel_id).is_unique

    # STEP 2: firms — home parcel, location kind, coordinates
    ind_pos = np.flatnonzero(industrial)
    home = ind_pos[rng.integers(0, len(ind_pos), n_firms)]
    kind = rng.choice(4, n_firms, p=[0.75, 0.20, 0.03, 0.02])  # in, gap, far, none
    fx = x0[home] + rng.uniform(0.1, 0.9, n_firms) * w[home]
    fy = y0[home] + rng.uniform(0.1, 0.9, n_firms) * h[home]
    gap = kind == 1  # on the right edge of the home cell: in the road, 5–55 m from the parcel
    fx[gap] = cx[home][gap] + PITCH - rng.uniform(0.0, 2.0, int(gap.sum()))
    far = kind == 2  # beyond the county block, still in the county's region polygon
    block_x0 = ORIGIN[0] + (county[home] % 10) * (side * PITCH + COUNTY_GAP)
    fx[far] = block_x0[far] - rng.uniform(100, 300, int(far.sum()))
    firm_county = county[home]
    code_serial = np.arange(n_firms, dtype=np.int64) * 7919 + rng.integers(0, 7919, n_firms)
    fcode = credit_codes(county_codes[firm_county], code_serial)
    zihao = _syllables(rng, n_firms)
    iword = INDUSTRY_WORDS[rng.integers(0, len(INDUSTRY_WORDS), n_firms)]
    fname = _concat(county_names[firm_county], zihao, iword, SUFFIXES[rng.integers(0, 5, n_firms)])
    to_ll = Transformer.from_crs(CRS, 4326, always_xy=True)
    lon, lat = to_ll.transform(fx, fy)
    csys = rng.choice(np.array(["WGS84", "GCJ02", "BD09"]), n_firms, p=[0.7, 0.2, 0.1])
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = wgs84_to_bd09(lon, lat)
    lon = np.where(csys == "GCJ02", glon, np.where(csys == "BD09", blon, lon))
    lat = np.where(csys == "GCJ02", glat, np.where(csys == "BD09", blat, lat))
    none = kind == 3
    lon, lat = np.round(lon, 7), np.round(lat, 7)
    above = rng.random(n_firms) < 0.25
    revenue = np.round(rng.lognormal(7.5, 1.3, n_firms), 2)
    div = INDUSTRY_DIVISIONS[rng.integers(0, len(INDUSTRY_DIVISIONS), n_firms)]
    enterprises = pd.DataFrame(
        {
            "统一社会信用代码": fcode,
            "企业名称": fname,
            "地址": _concat(county_names[firm_county], "工业大道", pd.Series(home % 997 + 1).astype(str), "号"),
            "经度": np.where(none, np.nan, lon),
            "纬度": np.where(none, np.nan, lat),
            "坐标系": np.where(none, "", csys),
            "行业代码": div * 100 + rng.integers(10, 99, n_firms),
            "企业规模": np.where(above, "规上", "规下"),
            "行业门类": "工业",
            "年份": 2022,
            "税收(万元)": np.round(revenue * rng.uniform(0.01, 0.08, n_firms), 2),
            "工业增加值(万元)": np.where(above, np.round(revenue * rng.uniform(0.15, 0.35, n_firms), 2), np.nan),
            "营业收入(万元)": revenue,
            "综合能耗(吨标煤)": np.round(revenue * rng.uniform(0.02, 0.4, n_firms), 2),
            "年平均职工人数": rng.integers(3, 800, n_firms),
            "主要污染物排放量(吨)": np.where(above, np.round(rng.lognormal(0, 1, n_firms), 3), np.nan),
            "研发经费支出(万元)": np.where(above, np.round(revenue * rng.uniform(0, 0.05, n_firms), 2), np.nan),
            "用电量(万kWh)": np.round(revenue * rng.uniform(0.01, 0.2, n_firms), 2),
            "高新技术企业": np.where(rng.random(n_firms) < 0.1, "是", "否"),
        }
    )  # fmt: skip

    # STEP 3: holders — the first firm on a parcel holds it (mostly), landlords elsewhere
    with_firm = kind <= 1
    first_firm = np.full(n_parcels, -1)
    f_idx = np.flatnonzero(with_firm)
    uniq, first = np.unique(home[f_idx], return_index=True)
    first_firm[uniq] = f_idx[first]
    r = rng.random(n_parcels)
    held = (first_firm >= 0) & (r < 0.85)
    landlord = ~held & (r < 0.8 + 0.2 * (first_firm >= 0))
    landlord_name = _concat(
        county_names[county],
        _syllables(rng, n_parcels),
        LANDLORD_WORDS[rng.integers(0, len(LANDLORD_WORDS), n_parcels)],
        "有限公司",
    )
    holder = np.full(n_parcels, None, dtype=object)
    holder[landlord] = landlord_name[landlord]
    holder_firm = first_firm[held]
    names = fname[holder_firm].copy()
    variant = rng.random(len(names)) < 0.05  # one extra character: a fuzzy-name candidate
    names[variant] = _concat(
        county_names[firm_county[holder_firm[variant]]],
        zihao[holder_firm[variant]],
        "新",
        iword[holder_firm[variant]],
        "有限公司",
    )
    holder[held] = names
    hcode = np.full(n_parcels, None, dtype=object)
    with_code = np.flatnonzero(held)[rng.random(int(held.sum())) < 0.35]
    hcode[with_code] = fcode[first_firm[with_code]]
    ll_code = np.flatnonzero(landlord)[rng.random(int(landlord.sum())) < 0.35]
    hcode[ll_code] = credit_codes(
        pcode[ll_code], 31**8 + np.arange(len(ll_code), dtype=np.int64) * 13
    )
    parcels = gpd.GeoDataFrame(
        {
            "ZDDM": parcel_id,
            "DLBM": land_use,
            "QLR": holder,
            "QLRDM": hcode,
            "XZQDM": pcode,
            # the registered area is the shape's own
            "ZDMJ": np.round(w * h if shape == "rectangle" else shapely.area(pgeom), 2),
        },
        geometry=pgeom,
        crs=CRS,
    )

    # STEP 4: buildings — strips side by side inside their parcel
    on_ind = rng.random(n_buildings) < 0.85
    bp = np.where(
        on_ind,
        ind_pos[rng.integers(0, len(ind_pos), n_buildings)],
        rng.integers(0, n_parcels, n_buildings),
    )
    order = np.argsort(bp, kind="stable")
    sorted_bp = bp[order]
    start = np.searchsorted(sorted_bp, sorted_bp)
    rank = np.empty(n_buildings, dtype=np.int64)
    rank[order] = np.arange(n_buildings) - start
    count = np.bincount(bp, minlength=n_parcels)[bp]
    strip = w[bp] / count
    bx0 = x0[bp] + rank * strip + 0.1 * strip
    bx1 = bx0 + 0.8 * strip
    by0 = y0[bp] + rng.uniform(0.05, 0.3, n_buildings) * h[bp]
    by1 = by0 + rng.uniform(0.3, 0.65, n_buildings) * h[bp]
    over = rng.random(n_buildings) < 0.05  # reaches over the parcel's lower edge
    by0[over] = y0[bp][over] - 3.0
    lap = rng.random(n_buildings) < 0.01  # overlaps the next strip (or the parcel edge)
    bx1[lap] += 0.3 * strip[lap]
    floors = rng.integers(1, 7, n_buildings).astype(float)
    has_floors = rng.random(n_buildings)
    height = np.round(floors * rng.uniform(3.0, 5.5, n_buildings), 1)
    buildings = gpd.GeoDataFrame(
        {
            "建筑编号": _concat(parcel_id[bp], "F", pd.Series(rank).astype(str).str.zfill(4)),
            "层数": np.where(has_floors < 0.70, floors, np.nan),
            "高度": np.where(has_floors < 0.95, height, np.nan),
            "用途": rng.choice(
                np.array(["生产", "仓储", "办公", "生活", "其他"]),
                n_buildings,
                p=[0.6, 0.2, 0.1, 0.05, 0.05],
            ),
        },
        geometry=shapely.box(bx0, by0, bx1, by1),
        crs=CRS,
    )

    # STEP 5: parks (two per county) and regions (counties, cities)
    block = side * PITCH
    k = np.arange(n_c)
    bx = ORIGIN[0] + (k % 10) * (block + COUNTY_GAP)
    by = ORIGIN[1] + (k // 10) * (block + COUNTY_GAP)
    half = block / 2
    parks = gpd.GeoDataFrame(
        {
            "园区编号": np.concatenate([_concat(county_codes, "-KFQ"), _concat(county_codes, "-GXQ")]),
            "园区名称": np.concatenate([_concat(county_names, "经济开发区"), _concat(county_names, "高新区")]),
            "园区类型": np.repeat(["经济开发区", "高新区"], n_c),
        },
        geometry=np.concatenate([shapely.box(bx, by, bx + half, by + half),
                                 shapely.box(bx + half, by + half, bx + block, by + block)]),
        crs=CRS,
    )  # fmt: skip
    cgeom = shapely.box(bx - 400, by - 400, bx + block + 400, by + block + 400)
    city_codes = counties["city_code"].to_numpy()
    cities = counties.drop_duplicates("city_code")
    city_geom = [shapely.union_all(cgeom[city_codes == c]) for c in cities["city_code"]]
    regions = gpd.GeoDataFrame(
        {
            "行政区划代码": np.concatenate([county_codes, cities["city_code"].to_numpy()]),
            "名称": np.concatenate([county_names, cities["city"].to_numpy(dtype=object)]),
            "级别": ["县"] * n_c + ["市"] * len(cities),
        },
        geometry=np.concatenate([cgeom, np.asarray(city_geom, dtype=object)]),
        crs=CRS,
    )
    return {
        "parcels": parcels,
        "enterprises": enterprises,
        "buildings": buildings,
        "parks": parks,
        "regions": regions,
    }


def write_province(layers: dict[str, pd.DataFrame], workdir: str | Path) -> dict[str, Path]:
    """Write the layers as a county delivers them: GeoPackages and a UTF-8 CSV of firms."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in layers.items():
        if isinstance(frame, gpd.GeoDataFrame):
            path = workdir / f"{name}.gpkg"
            path.unlink(missing_ok=True)
            frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio", use_arrow=True)
        else:
            path = workdir / f"{name}.csv"
            frame.to_csv(path, index=False, encoding="utf-8")
        paths[name] = path
    return paths


def _check_codes(rng: np.random.Generator, n: int = 200) -> None:
    """The vectorised codes equal :func:`make_credit_code` (spot check)."""
    regions = county_table()["region_code"].to_numpy()
    reg = regions[rng.integers(0, len(regions), n)]
    ser = rng.integers(0, 31**9, n)
    fast = credit_codes(reg, ser)
    slow = [make_credit_code(r, int(s)) for r, s in zip(reg, ser)]
    assert list(fast) == slow, "credit_codes disagrees with make_credit_code"


def generate(
    n_parcels: int,
    n_firms: int | None,
    n_buildings: int | None,
    workdir: str | Path,
    *,
    seed: int = 0,
    shape: str = "rectangle",
) -> dict[str, object]:
    """Make and write the province into ``workdir``; return paths and timings (manifest)."""
    _check_codes(np.random.default_rng(seed + 1))
    t0 = time.perf_counter()
    layers = make_province(n_parcels, n_firms, n_buildings, seed=seed, shape=shape)
    t_make = time.perf_counter() - t0
    t0 = time.perf_counter()
    paths = write_province(layers, workdir)
    t_write = time.perf_counter() - t0
    manifest = {
        "n_parcels": len(layers["parcels"]),
        "n_firms": len(layers["enterprises"]),
        "n_buildings": len(layers["buildings"]),
        "seed": seed,
        "shape": shape,
        "make_s": round(t_make, 2),
        "write_s": round(t_write, 2),
        "paths": {k: str(v) for k, v in paths.items()},
    }
    (Path(workdir) / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def data_dir_name(n_parcels: int, shape: str = "rectangle") -> str:
    """Folder of a province in the work folder: ``p1000000`` or ``p1000000-irregular``."""
    return f"p{n_parcels}" + ("" if shape == "rectangle" else f"-{shape}")


def add_shape_option(ap: argparse.ArgumentParser, *, default: str = "rectangle") -> None:
    """The ``--shape`` option of this script and of the benchmarks that make its data."""
    ap.add_argument(
        "--shape",
        choices=["rectangle", *SHAPE_STEPS],
        default=default,
        help="parcel shapes: rectangles, 13–21-vertex polygons like surveyed parcels "
        "(irregular), or 25–45-vertex ones (jagged, a stress case); default %(default)s",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--firms", type=int, default=None, help="default: parcels / 2")
    ap.add_argument("--buildings", type=int, default=None, help="default: 2 × parcels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp/mujun-bench", help="folder (outside the repo)")
    add_shape_option(ap)
    args = ap.parse_args(argv)
    out = Path(args.workdir) / data_dir_name(args.parcels, args.shape)
    manifest = generate(
        args.parcels, args.firms, args.buildings, out, seed=args.seed, shape=args.shape
    )
    print(json.dumps(manifest, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
