"""Size and build time of the web maps for a synthetic county of 50,000 parcels.

Usage: python scripts/bench_webmap.py [--parcels 50000] [--out out/bench_maps]

Parcels are 8-vertex polygons of 40–120 m on a jittered grid in EPSG:4549 around
120.6E 30.45N; 8 % are low-efficiency, one firm per ~6 parcels. The maps are written twice:
with the default ``max_features=20000`` (parcel themes aggregated to grid cells) and with
every parcel drawn individually.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

import geopandas as gpd
import shapely
from pyproj import Transformer

from mujun_geo.webmap import make_webmaps


def county(n: int, seed: int = 0) -> dict[str, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    x0, y0 = Transformer.from_crs(4326, 4549, always_xy=True).transform(120.6, 30.45)
    side = int(np.ceil(np.sqrt(n)))
    step = 140.0
    i = np.arange(n)
    cx = x0 + (i % side) * step + rng.uniform(-10, 10, n)
    cy = y0 + (i // side) * step + rng.uniform(-10, 10, n)
    half = rng.uniform(20, 60, (n, 1))
    ang = np.linspace(0, 2 * np.pi, 9)[:-1][None, :] + rng.uniform(-0.2, 0.2, (n, 8))
    rad = half * rng.uniform(0.85, 1.15, (n, 8)) * np.sqrt(2)
    xs = cx[:, None] + np.clip(rad * np.cos(ang), -half, half)
    ys = cy[:, None] + np.clip(rad * np.sin(ang), -half, half)
    coords = np.stack([np.concatenate([xs, xs[:, :1]], 1), np.concatenate([ys, ys[:, :1]], 1)], -1)
    geoms = shapely.polygons(coords)
    grades = rng.choice(np.array(["A", "B", "C", "D", ""]), n, p=[0.2, 0.3, 0.25, 0.1, 0.15])
    low = rng.random(n) < 0.08
    reasons = rng.choice(np.array(["vacant", "idle", "far_below_min", "low_tax_per_mu;d_grade"]), n)
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": [f"330602{k:013d}" for k in i],
            "land_use": "0601",
            "area_mu": shapely.area(geoms) * 3 / 2000,
            "n_enterprises": rng.integers(0, 4, n),
            "tax_per_mu": np.round(rng.lognormal(2.5, 0.9, n), 2),
            "va_per_mu": np.round(rng.lognormal(3.5, 0.8, n), 2),
            "far": np.round(rng.uniform(0.3, 2.5, n), 2),
            "coverage": np.round(rng.uniform(0.2, 0.7, n), 3),
            "grade": grades,
            "lowland": low.astype(int),
            "lowland_reasons": np.where(low, reasons, ""),
            "holder_name": [f"绍兴市某某制造有限公司{k}" for k in i],
            "park_id": "",
        },
        geometry=geoms,
        crs=4549,
    )
    nf = n // 6
    pick = rng.choice(n, nf, replace=False)
    firms = gpd.GeoDataFrame(
        {
            "credit_code": [f"91330602MA{k:08d}" for k in range(nf)],
            "name": [f"绍兴市某某制造有限公司{k}" for k in pick],
            "grade": grades[pick],
            "score": np.round(rng.uniform(40, 100, nf), 1),
            "tax_per_mu": parcels["tax_per_mu"].to_numpy()[pick],
            "match_status": "matched",
            "parcel_ids": parcels["parcel_id"].to_numpy()[pick],
            "grade_note": "",
        },
        geometry=shapely.points(cx[pick], cy[pick]),
        crs=4549,
    )
    b = parcels.total_bounds
    w = (b[2] - b[0]) / 5
    regions = gpd.GeoDataFrame(
        {
            "region_code": [f"33060{k}" for k in range(5)],
            "name": [f"区县{k}" for k in range(5)],
            "tax_per_mu": [32.0, 20.0, 25.0, 18.0, 40.0],
            "tax_per_mu_target": 28.0,
        },
        geometry=[shapely.box(b[0] + k * w, b[1], b[0] + (k + 1) * w, b[3]) for k in range(5)],
        crs=4549,
    )
    return {"parcels": parcels, "enterprises": firms, "regions": regions}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=50_000)
    ap.add_argument("--out", default="out/bench_maps")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    layers = county(args.parcels)
    for label, maxf in (("default (aggregated)", 20_000), ("all parcels", args.parcels + 1)):
        out = Path(args.out) / f"max{maxf}"
        t = time.perf_counter()
        paths = make_webmaps(layers, out, max_features=maxf, overwrite=True)
        dt = time.perf_counter() - t
        print(f"{args.parcels:,} parcels, {label}, max_features={maxf:,}: {dt:.1f} s")
        for p in paths.values():
            print(f"  {p.name:16s} {p.stat().st_size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
