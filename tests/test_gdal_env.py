"""GDAL settings every engine works under."""

from osgeo import gdal

from landfusion.core.io import raster as raster_io


def test_gdal_env_gives_gdal_the_cache_in_megabytes_and_all_cores():
    outside = gdal.GetCacheMax()
    with raster_io.gdal_env():
        assert gdal.GetCacheMax() == raster_io.DEFAULT_GDAL_CACHE_MB * 1024 * 1024
        assert gdal.GetConfigOption("GDAL_NUM_THREADS") == "ALL_CPUS"
    with raster_io.gdal_env(64, GDAL_NUM_THREADS="1"):
        assert gdal.GetCacheMax() == 64 * 1024 * 1024
        assert gdal.GetConfigOption("GDAL_NUM_THREADS") == "1"
    assert gdal.GetCacheMax() == outside
