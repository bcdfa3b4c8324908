"""Real-data fixtures of the change tests: OSCD city pairs on the label grid, S1 date pairs."""

import glob
import os

import numpy as np

from conftest import DATA, data_path

OSCD_CITIES = ("paris", "rennes", "bordeaux", "aguasclaras", "nantes")
OSCD_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
OSCD_INDICES = ("NDVI", "NDBI")


def oscd_label(city: str) -> str:
    """The change label raster of an OSCD city (1 no change, 2 change)."""
    return str(data_path("oscd", "labels", city, f"{city}-cm_georef.tif"))


def oscd_files(city: str, date: int) -> list:
    """The 13 single-band Sentinel-2 L1C files of an OSCD city and date (1 or 2)."""
    folder = data_path("oscd", "images", city, f"imgs_{date}")
    return sorted(glob.glob(os.path.join(str(folder), "*.tif")))


def build_oscd_stack(city: str, date: int, folder) -> str:
    """Co-registers one OSCD date onto the label grid with the stack engine (as a user would)."""
    from landfusion.core.stack.coregister import coregister_stack

    out = os.path.join(str(folder), f"{city}_{date}.tif")
    if not os.path.exists(out):
        coregister_stack(out, s2=oscd_files(city, date), s2_bands=OSCD_BANDS,
                         indices=OSCD_INDICES, reference=oscd_label(city))
    return out


def s1_dates() -> list:
    """The two ssl4eo Sentinel-1 dates as (VV path, VH path), oldest first."""
    root = data_path("ssl4eo", "s1")
    folders = sorted(glob.glob(os.path.join(str(root), "*", "S1*")),
                     key=lambda p: os.path.basename(p).split("_")[4])
    return [(os.path.join(f, "VV.tif"), os.path.join(f, "VH.tif")) for f in folders]


def build_s1_pair(folder) -> tuple:
    """Two-band VV/VH (dB) rasters of the two ssl4eo dates, bands named VV and VH."""
    import rasterio

    outputs = []
    for i, (vv, vh) in enumerate(s1_dates()):
        out = os.path.join(str(folder), f"s1_date{i + 1}.tif")
        with rasterio.open(vv) as a, rasterio.open(vh) as b:
            profile = dict(a.profile, count=2, dtype="float32", driver="GTiff")
            with rasterio.open(out, "w", **profile) as dst:
                dst.write(a.read(1).astype(np.float32), 1)
                dst.write(b.read(1).astype(np.float32), 2)
                dst.set_band_description(1, "VV")
                dst.set_band_description(2, "VH")
        outputs.append(out)
    return tuple(outputs)


def f1_of_change(predicted: np.ndarray, label: np.ndarray, change_value, label_change=2) -> dict:
    """Precision, recall and F1 of change, counted with numpy against an OSCD label."""
    truth = label == label_change
    guess = predicted == change_value
    tp = int(np.sum(truth & guess))
    fp = int(np.sum(~truth & guess))
    fn = int(np.sum(truth & ~guess))
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "f1": 2 * tp / max(2 * tp + fp + fn, 1)}


__all__ = ["DATA", "OSCD_CITIES", "build_oscd_stack", "build_s1_pair", "f1_of_change",
           "oscd_label"]
