"""Swapped VV and VH are caught: cross-polarised backscatter is weaker than co-polarised on every
real Sentinel-1 scene, while both lie in the same plausible dB range (the units and training-range
checks alone let a swap through)."""

import glob
import os

import numpy as np
import pytest
import rasterio
from conftest import data_path

from landfusion.core.errors import BandError
from landfusion.core.models.bands import check_model_bands
from landfusion.core.models.reading import read_model
from landfusion.core.sensors.units import check_units, polarisation_problems, sample_bands
from landfusion.core.stack.coregister import coregister_stack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WATER = os.path.join(ROOT, "resources", "models", "s1_water_unet.onnx")


def real_pairs():
    """(name, VV values, VH values) of every real dual-polarisation scene in the shared data."""
    root = str(data_path("sen1floods11"))  # skips without the shared data
    shared = os.path.dirname(root)
    pairs = []
    for path in sorted(glob.glob(os.path.join(shared, "sen1floods11*", "*_S1Hand.tif"))
                       + glob.glob(os.path.join(shared, "terramind", "S1RTC", "*.tif"))):
        with rasterio.open(path) as ds:
            values = sample_bands(ds, [1, 2])
        pairs.append((os.path.basename(path), values[0], values[1]))
    for path in sorted(glob.glob(os.path.join(shared, "bigearthnet", "**", "*_VV.tif"),
                                 recursive=True)):
        with rasterio.open(path) as vv, rasterio.open(path.replace("_VV.", "_VH.")) as vh:
            pairs.append((os.path.basename(path), sample_bands(vv, [1])[0],
                          sample_bands(vh, [1])[0]))
    return pairs


def test_every_real_scene_passes_and_is_caught_when_swapped():
    pairs = real_pairs()
    assert len(pairs) >= 13
    for name, vv, vh in pairs:
        assert not polarisation_problems(["VV", "VH"], [vv, vh]), name
        check_units(["VV", "VH"], [vv, vh])  # no error
        with pytest.raises(BandError, match="band VH is brighter than band VV .* look swapped"):
            check_units(["VV", "VH"], [vh, vv], what=name)


def test_pairs_are_matched_by_date_and_unit_and_need_both_bands():
    rng = np.random.default_rng(0)
    bright, dark = rng.normal(-8, 3, 500), rng.normal(-16, 3, 500)
    # two dates: only the second is swapped
    names = ["20200101_VV", "20200101_VH", "20200113_VV", "20200113_VH"]
    problems = polarisation_problems(names, [bright, dark, dark, bright])
    assert len(problems) == 1 and "20200113_VH is brighter than band 20200113_VV" in problems[0]
    # bands of different dates are never compared
    assert not polarisation_problems(["20200101_VV", "20200113_VH"], [dark, bright])
    # nor bands in different units, nor a lone polarisation, nor HH/HV with VV/VH
    assert not polarisation_problems(["VV_dB", "VH_lin"], [dark, bright])
    assert not polarisation_problems(["VH"], [bright])
    assert not polarisation_problems(["HH", "VH"], [dark, bright])
    assert polarisation_problems(["HH", "HV"], [dark, bright])


def swapped_copy(source, path):
    """The chip with its two bands' contents exchanged, descriptions kept (VV, VH)."""
    with rasterio.open(source) as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data[::-1])
        dst.descriptions = names
    return str(path)


def test_water_model_refuses_swapped_bands(tmp_path, run_algorithm):
    from qgis.core import QgsProcessingException

    chip = str(data_path("sen1floods11_s1only", "USA_905409_S1Hand.tif"))
    swapped = swapped_copy(chip, tmp_path / "swapped.tif")
    card = read_model(WATER)
    with rasterio.open(chip) as ds:
        assert check_model_bands(card, ds).indexes == [1, 2]
    with rasterio.open(swapped) as ds:
        with pytest.raises(BandError, match="look swapped"):
            check_model_bands(card, ds)
    out = tmp_path / "water.tif"
    with pytest.raises(QgsProcessingException, match="VH is brighter than band VV"):
        run_algorithm("landfusion:cnnclassify", {"INPUT": swapped, "MODEL": "s1_water_unet",
                                                 "OUTPUT": str(out)})
    assert not out.exists()


def test_stack_warns_about_a_swapped_date(tmp_path):
    chip = str(data_path("sen1floods11", "Spain_7370579_S1Hand.tif"))
    warnings = []
    coregister_stack(str(tmp_path / "right.tif"), s1=[chip], reference=chip, warn=warnings.append)
    assert not [w for w in warnings if "swapped" in w]
    swapped = swapped_copy(chip, tmp_path / "S1_20190917_swapped.tif")
    coregister_stack(str(tmp_path / "stack.tif"), s1=[swapped], reference=chip,
                     warn=warnings.append)
    swaps = [w for w in warnings if "look swapped" in w]
    assert len(swaps) == 1 and "VH is brighter than band VV" in swaps[0]
