"""Band identity by name."""

import pytest

from landfusion.core.sensors.bands import (match_bands, normalise_s2_band, parse_band_list,
                                   resolve_s2_band_names)
from landfusion.core.errors import BandError


@pytest.mark.parametrize("text,expected", [
    ("B2", "B02"), ("B02", "B02"), ("b8a", "B8A"), ("B8A", "B8A"), ("B12", "B12"),
    ("S2_B04", "B04"), ("S2A_MSIL2A_20170613T101031_87_48_B05.tif", "B05"), ("B4.tif", "B04"),
    ("/data/T33/B11.jp2", "B11"), ("NDVI", None), ("B13", None), ("VV", None),
])
def test_normalise(text, expected):
    assert normalise_s2_band(text) == expected


def test_parse_list_and_errors():
    assert parse_band_list("B2, B03,B4 ,b8A") == ["B02", "B03", "B04", "B8A"]
    with pytest.raises(BandError, match="'red' is not a Sentinel-2 band"):
        parse_band_list("B02,red")
    with pytest.raises(BandError, match="B02"):
        parse_band_list("B2,B02")


def test_resolve_names():
    assert resolve_s2_band_names("", ["B2", "B3", "B4", "B8"]) == ["B02", "B03", "B04", "B08"]
    assert resolve_s2_band_names("B04,B08", ["", ""]) == ["B04", "B08"]
    with pytest.raises(BandError, match="2 band names were given .* has 3 band"):
        resolve_s2_band_names("B04,B08", ["", "", ""])
    with pytest.raises(BandError, match="band\\(s\\) 2 of the input"):
        resolve_s2_band_names("", ["B04", ""], "the input")


def test_match_bands_by_name_and_order():
    raster = ["S1_20190917_VV_dB", "S1_20190917_VH_dB", "S2_B04", "S2_B08", "NDVI"]
    assert match_bands(raster, ["NDVI", "B04", "S1_20190917_VV_dB"]) == [5, 3, 1]
    with pytest.raises(BandError) as info:
        match_bands(raster, ["NDVI", "B11"], "The model")
    message = str(info.value)
    assert "missing: B11" in message and "S2_B08" in message and "NDVI, B11" in message
    assert match_bands(["", ""], ["a", "b"]) == [1, 2]
    with pytest.raises(BandError, match="needs 3 bands"):
        match_bands(["", ""], ["a", "b", "c"])
