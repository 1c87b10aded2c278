"""The benchmark's synthetic province (scripts/make_province.py): irregular parcel shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from make_province import data_dir_name, make_province  # noqa: E402


def test_irregular_parcels_keep_everything_but_the_shape():
    rect = make_province(3000, seed=4)
    irr = make_province(3000, seed=4, shape="irregular")
    # the other layers come from the same random stream
    for name in ("enterprises", "buildings", "parks", "regions"):
        assert irr[name].equals(rect[name]), name
    r = np.asarray(rect["parcels"].geometry.values)
    g = np.asarray(irr["parcels"].geometry.values)
    n = shapely.get_num_coordinates(g)
    # 60–110 m sides with a vertex every 25 m: 13–21 vertices (+1 closing), never a rectangle
    assert n.min() >= 13 and n.max() <= 21
    assert shapely.is_valid(g).all() and not shapely.equals(g, shapely.envelope(g)).any()
    # vertices moved by at most 2 m: every edge stays within 2 m of the rectangle's
    assert shapely.hausdorff_distance(g, r).max() <= 2.0 * np.sqrt(2) + 1e-9
    assert np.abs(shapely.area(g) / shapely.area(r) - 1).max() < 0.05
    # the registered area (ZDMJ) is the shape's own, as the rectangles' is theirs
    for layers in (rect, irr):
        p = layers["parcels"]
        assert np.allclose(p["ZDMJ"], shapely.area(p.geometry.values), atol=0.005)
    assert data_dir_name(10, "irregular") == "p10-irregular" and data_dir_name(10) == "p10"
