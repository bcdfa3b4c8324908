"""Block planning of core/io/raster.py: blocks within the memory budget, on the output tiles,
and on the input's own tiles when asked, so that no input tile is decoded for two blocks."""

import numpy as np
import rasterio
from rasterio.transform import from_origin

from landfusion.core.indices.compute import compute_spectral_indices
from landfusion.core.io.raster import TILE, input_alignment, plan_blocks
from landfusion.core.runtime import thread_count


def write_raster(path, width, height, **layout):
    rng = np.random.default_rng(3)
    data = rng.integers(1, 10000, size=(3, height, width), dtype=np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3,
                       dtype="uint16", crs="EPSG:32631", nodata=0,
                       transform=from_origin(300000, 5000040, 10, 10), **layout) as dst:
        dst.write(data)
        dst.descriptions = ("B03", "B04", "B08")
    return data


def covers_once(blocks, width, height):
    seen = np.zeros((height, width), dtype=np.int32)
    for b in blocks:
        seen[b.row_off:b.row_off + b.height, b.col_off:b.col_off + b.width] += 1
    return bool(np.all(seen == 1))


def test_input_alignment_follows_tiles_and_leaves_strips_on_the_output_tile(tmp_path):
    tiled, strips, odd = tmp_path / "tiled.tif", tmp_path / "strips.tif", tmp_path / "odd.tif"
    write_raster(tiled, 1300, 1100, tiled=True, blockxsize=512, blockysize=512)
    write_raster(strips, 1300, 1100, tiled=False, blockysize=8)
    write_raster(odd, 1300, 1100, tiled=True, blockxsize=368, blockysize=368)
    with rasterio.open(tiled) as a, rasterio.open(strips) as b, rasterio.open(odd) as c:
        assert input_alignment(a) == (512, 512)
        assert input_alignment(b) == (TILE, TILE)  # 8-row strips nest in tile rows
        assert input_alignment(c) == (TILE, TILE)  # lcm(256, 368) = 5888: not worth it


def test_aligned_blocks_fit_the_budget_and_fall_on_input_tiles():
    width, height, bpp = 10980, 10980, 76
    budget_mb = 256 / 3
    blocks = plan_blocks(width, height, bpp, budget_mb, align=(512, 512))
    assert covers_once(blocks, width, height)
    assert all(b.row_off % 512 == 0 and b.col_off % 512 == 0 for b in blocks)
    assert max(b.width * b.height for b in blocks) * bpp <= budget_mb * 1024 * 1024
    # Without alignment the same budget cuts every 512-row input tile row in two.
    assert {b.height for b in plan_blocks(width, height, bpp, budget_mb)} == {256, 228}
    # A budget below one 512 x 512 unit falls back to output tiles.
    small = plan_blocks(width, height, bpp, 10, align=(512, 512))
    assert small == plan_blocks(width, height, bpp, 10)
    assert covers_once(small, width, height)


def test_indices_on_input_tiles_equal_one_block(tmp_path):
    src = tmp_path / "s2.tif"
    write_raster(src, 1300, 1100, tiled=True, blockxsize=512, blockysize=512)
    one, tiles = tmp_path / "one.tif", tmp_path / "tiles.tif"
    compute_spectral_indices(str(src), str(one), indices=["NDVI", "NDWI"])
    fractions = []
    # 6 MiB per block (one block per worker and two more in flight): too little for full-width
    # strips of 512 rows, enough for blocks of one 512 x 512 input tile (14 bytes per pixel).
    compute_spectral_indices(str(src), str(tiles), indices=["NDVI", "NDWI"],
                             memory_mb=6 * (thread_count() + 2), progress=fractions.append)
    assert len(fractions) == 9  # 3 x 3 blocks of (up to) 512 x 512
    with rasterio.open(one) as a, rasterio.open(tiles) as b:
        assert np.array_equal(a.read(), b.read())
        assert a.read(1)[a.read(1) != -9999].size > 0.99 * 1300 * 1100
