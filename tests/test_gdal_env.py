"""GDAL settings every engine works under."""

from osgeo import gdal

from landfusion.core.io import raster as raster_io


def test_gdal_env_gives_gdal_the_cache_in_megabytes():
    outside = gdal.GetCacheMax()
    with raster_io.gdal_env():
        assert gdal.GetCacheMax() == raster_io.DEFAULT_GDAL_CACHE_MB * 1024 * 1024
    with raster_io.gdal_env(64, GDAL_TIFF_INTERNAL_MASK="YES"):
        assert gdal.GetCacheMax() == 64 * 1024 * 1024
        assert gdal.GetConfigOption("GDAL_TIFF_INTERNAL_MASK") == "YES"
    assert gdal.GetCacheMax() == outside
