"""Real labelled pixels for the classification benchmarks.

TerraMind chips (``../shared/data/terramind``; three 224 x 224 chips in Brazil, Chile and
Denmark, Sentinel-1 RTC + Sentinel-2 L2A on one grid, 10-class land-cover labels) give 20
features per pixel: the 12 L2A reflectances, VV and VH in dB, and six indices (NDVI, NDWI,
MNDWI, NDBI, NBR, VV - VH). Validation is held out by cell: each chip is cut into 32 x 32 pixel
cells and every third cell (in a checkerboard-like pattern) is test data, so no test pixel has
a training neighbour from the same cell.

The Sen1Floods11 chip (``Spain_7370579``, hand-labelled water/land) is a second, binary test.

The benchmark rasters of any size are mosaics of the TerraMind feature chips (mirrored
alternately so tiles join), so the forests walk real spectra, not a toy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("LANDFUSION_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
TERRAMIND = SHARED / "terramind"
FLOODS = SHARED / "sen1floods11"
CHIPS = ("282D_485L_3_3", "433D_629L_3_1", "637U_59R_1_3")
S2_NAMES = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
FEATURES = S2_NAMES + ["VV", "VH", "NDVI", "NDWI", "MNDWI", "NDBI", "NBR", "VV_VH"]
CELL = 32
#: Land-cover names of the TerraMind labels (see ../shared/data/README.md).
CLASS_NAMES = {1: "water", 2: "trees", 3: "flooded vegetation", 4: "crops", 5: "built area",
               6: "bare ground", 7: "snow/ice", 8: "clouds", 9: "rangeland"}


def available() -> bool:
    """True when the TerraMind chips are present."""
    return all((TERRAMIND / kind / f"{chip}.tif").exists()
               for chip in CHIPS for kind in ("S1RTC", "S2L2A", "LULC"))


def _ratio(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a + b != 0, (a - b) / (a + b), 0).astype(np.float32)


def features_from(s2: np.ndarray, vv: np.ndarray, vh: np.ndarray) -> np.ndarray:
    """(20, rows, cols) float32 features from 12 L2A reflectances (0-1) and VV, VH in dB."""
    band = {n: s2[i] for i, n in enumerate(S2_NAMES)}
    extra = [vv, vh, _ratio(band["B08"], band["B04"]), _ratio(band["B03"], band["B08"]),
             _ratio(band["B03"], band["B11"]), _ratio(band["B11"], band["B08"]),
             _ratio(band["B08"], band["B12"]), vv - vh]
    return np.concatenate([s2, np.stack(extra)]).astype(np.float32)


def chip(name: str) -> tuple:
    """Returns ``(features (20, 224, 224), labels (224, 224) uint8, profile)`` of a chip."""
    import rasterio

    with rasterio.open(TERRAMIND / "S2L2A" / f"{name}.tif") as src:
        s2 = src.read().astype(np.float32) / 10000.0
        profile = src.profile
    with rasterio.open(TERRAMIND / "S1RTC" / f"{name}.tif") as src:
        s1 = src.read().astype(np.float32)
    with rasterio.open(TERRAMIND / "LULC" / f"{name}.tif") as src:
        labels = src.read(1)
    return features_from(s2, s1[0], s1[1]), labels, profile


def terramind() -> dict:
    """Labelled pixels of the three chips, split by held-out cells.

    Returns:
        ``{"X_train", "y_train", "X_test", "y_test", "groups_train"}``; labels 0 (nodata) and
        non-finite pixels are dropped.
    """
    xs, ys, tests, groups = [], [], [], []
    for c, name in enumerate(CHIPS):
        features, labels, _ = chip(name)
        rows, cols = labels.shape
        rr, cc = np.mgrid[0:rows, 0:cols]
        cell_r, cell_c = rr // CELL, cc // CELL
        group = c * 1000 + cell_r * 100 + cell_c
        test = (cell_r + 2 * cell_c) % 3 == 0
        X = features.reshape(len(FEATURES), -1).T
        keep = (labels.ravel() > 0) & np.isfinite(X).all(axis=1)
        xs.append(X[keep])
        ys.append(labels.ravel()[keep])
        tests.append(test.ravel()[keep])
        groups.append(group.ravel()[keep])
    X, y, test, group = (np.concatenate(a) for a in (xs, ys, tests, groups))
    return {"X_train": X[~test], "y_train": y[~test], "X_test": X[test], "y_test": y[test],
            "groups_train": group[~test]}


def floods() -> dict:
    """The Sen1Floods11 Spain chip: S2 L1C (13 bands, /10000), VV, VH; water/land; held-out
    cells as for TerraMind. Returns the same keys as :func:`terramind` (or {} when absent)."""
    import rasterio

    base = FLOODS / "Spain_7370579"
    paths = [Path(f"{base}_{k}.tif") for k in ("S2Hand", "S1Hand", "LabelHand")]
    if not all(p.exists() for p in paths):
        return {}
    with rasterio.open(paths[0]) as src:
        s2 = src.read().astype(np.float32) / 10000.0
    with rasterio.open(paths[1]) as src:
        s1 = src.read().astype(np.float32)
    with rasterio.open(paths[2]) as src:
        labels = src.read(1).astype(np.int16)
    X = np.concatenate([s2, s1, (s1[0] - s1[1])[None]]).reshape(16, -1).T
    rows, cols = labels.shape
    rr, cc = np.mgrid[0:rows, 0:cols]
    test = ((rr // CELL) + 2 * (cc // CELL)) % 3 == 0
    keep = (labels.ravel() >= 0) & np.isfinite(X).all(axis=1)
    y = labels.ravel()[keep] + 1
    X, test = X[keep], test.ravel()[keep]
    return {"X_train": X[~test], "y_train": y[~test], "X_test": X[test], "y_test": y[test]}


def write_mosaic(path: Path, size: int) -> None:
    """Writes a size x size x 20 float32 tiled GeoTIFF mosaicking the TerraMind feature chips
    (block by block; mirrored tiles so edges join). Band descriptions are the feature names."""
    import rasterio
    from rasterio.transform import from_origin

    chips = [chip(name)[0] for name in CHIPS]
    side = chips[0].shape[1]
    profile = {"driver": "GTiff", "dtype": "float32", "count": len(FEATURES), "width": size,
               "height": size, "crs": "EPSG:32633",
               "transform": from_origin(500000, 5000000, 10, 10), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "BIGTIFF": "YES"}
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for i, name in enumerate(FEATURES):
            dst.set_band_description(i + 1, name)
        for row in range(0, size, side):
            rows = min(side, size - row)
            strip = np.empty((len(FEATURES), rows, size), dtype=np.float32)
            for k, col in enumerate(range(0, size, side)):
                tile_r, tile_c = row // side, col // side
                tile = chips[(tile_r + tile_c) % 3]
                if tile_r % 2:
                    tile = tile[:, ::-1, :]
                if tile_c % 2:
                    tile = tile[:, :, ::-1]
                cols = min(side, size - col)
                strip[:, :, col:col + cols] = tile[:, :rows, :cols]
            dst.write(strip, window=((row, row + rows), (0, size)))
    os.replace(tmp, path)


def mosaic(size: int) -> Path:
    """The path of the size x size benchmark mosaic, written on first use."""
    path = HERE / "data" / f"terramind_mosaic_{size}x{size}x{len(FEATURES)}.tif"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        write_mosaic(path, size)
    return path
