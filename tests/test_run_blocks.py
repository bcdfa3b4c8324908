"""The block walker of core/io/raster.py: every block read, worked and written once, in order,
whatever the mode (plain, read-ahead, work alone, several workers); errors and cancellation stop
the walk; block arrays are recycled; each reading thread has its own dataset."""

import threading
import time

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from landfusion.core.errors import CancelledError
from landfusion.core.indices import compute as indices_compute
from landfusion.core.indices.compute import compute_spectral_indices
from landfusion.core.io.raster import ArrayPool, Block, DatasetPerThread, run_blocks

MODES = {
    "plain": dict(read_ahead=False),
    "read-ahead": dict(),
    "work alone": dict(work_alone=True),
    "two workers": dict(workers=2),
    "three workers": dict(workers=3),
}


def strips(count):
    return [Block(row, 1, 10) for row in range(count)]


class Recorder:
    """Steps that record what ran where; work takes longer on even blocks so that, with several
    workers, later blocks finish first."""

    def __init__(self, fail_at=None):
        self.fail_at = fail_at
        self.written = []
        self.threads = set()
        self.lock = threading.Lock()

    def read(self, block):
        return np.full(3, block.row_off)

    def work(self, block, data):
        with self.lock:
            self.threads.add(threading.current_thread().name)
        if block.row_off == self.fail_at:
            raise ValueError(f"block {block.row_off} is broken")
        time.sleep(0.004 if block.row_off % 2 == 0 else 0.0)
        return data * 2

    def write(self, block, result):
        assert np.array_equal(result, np.full(3, 2 * block.row_off))
        self.written.append(block.row_off)


@pytest.mark.parametrize("mode", MODES)
def test_every_block_is_written_once_in_order(mode):
    steps, progress = Recorder(), []
    run_blocks(strips(25), steps.read, steps.work, progress.append, write=steps.write,
               **MODES[mode])
    assert steps.written == list(range(25))
    assert progress == pytest.approx([(i + 1) / 25 for i in range(25)])


def test_workers_work_blocks_on_several_threads():
    steps = Recorder()
    run_blocks(strips(40), steps.read, steps.work, write=steps.write, workers=2)
    assert len({t for t in steps.threads if t.startswith("landfusion-block")}) == 2


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_keep_at_most_workers_plus_two_blocks_alive(workers):
    """Memory is bounded: a block is alive from its read until it is written, and no more than
    ``workers + 2`` are (the engines size blocks from that)."""
    alive, most, lock = [0], [0], threading.Lock()

    def read(block):
        with lock:
            alive[0] += 1
            most[0] = max(most[0], alive[0])
        return block.row_off

    def write(block, result):
        time.sleep(0.003)  # a slow disk: finished blocks pile up if nothing holds them back
        with lock:
            alive[0] -= 1

    run_blocks(strips(60), read, lambda block, data: data, write=write, workers=workers)
    assert alive[0] == 0
    assert workers <= most[0] <= workers + 2


@pytest.mark.parametrize("mode", MODES)
def test_an_error_in_a_block_stops_the_walk_and_propagates(mode):
    steps = Recorder(fail_at=7)
    with pytest.raises(ValueError, match="block 7 is broken"):
        run_blocks(strips(30), steps.read, steps.work, write=steps.write, **MODES[mode])
    # Blocks before the broken one may or may not have been written (the output is discarded);
    # nothing after it is.
    assert steps.written == list(range(len(steps.written))) and len(steps.written) <= 7


@pytest.mark.parametrize("mode", MODES)
def test_cancelling_stops_before_the_next_block(mode):
    steps = Recorder()
    with pytest.raises(CancelledError):
        run_blocks(strips(30), steps.read, steps.work, write=steps.write,
                   is_cancelled=lambda: len(steps.written) >= 5, **MODES[mode])
    assert 5 <= len(steps.written) < 30
    assert steps.written == list(range(len(steps.written)))


def test_array_pool_reuses_buffers_across_shapes_and_keeps_few():
    pool = ArrayPool(keep=2)
    big = pool.take((4, 512, 600), np.float32)
    root = big.base
    big[:] = 1
    pool.give(big)
    # A smaller block (last column) gets the same memory, contiguous, in its own shape.
    small = pool.take((4, 512, 300), np.float32)
    assert small.shape == (4, 512, 300) and small.flags.c_contiguous
    assert np.shares_memory(small, root)
    # Another dtype never shares it.
    other = pool.take((4, 512, 300), np.uint16)
    assert not np.shares_memory(other, root)
    # Several arrays alive at once are distinct; only `keep` free ones are kept.
    alive = [pool.take((10,), np.float32) for _ in range(5)]
    assert len({a.base.ctypes.data for a in alive}) == 5
    for a in alive:
        pool.give(a)
    assert len(pool._free[np.dtype(np.float32).str]) == 2


def write_s2(path, interleave, width=1100, height=900):
    rng = np.random.default_rng(5)
    data = rng.integers(1, 9000, size=(3, height, width), dtype=np.uint16)
    data[:, :40, :70] = 0  # Sentinel-2 NO_DATA corner
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3,
                       dtype="uint16", crs="EPSG:32631", nodata=0, tiled=True, blockxsize=256,
                       blockysize=256, compress="DEFLATE", interleave=interleave,
                       transform=from_origin(300000, 5000040, 10, 10)) as dst:
        dst.write(data)
        dst.descriptions = ("B03", "B04", "B08")
    return data


def test_each_thread_reads_through_its_own_dataset(tmp_path):
    path = tmp_path / "s2.tif"
    data = write_s2(path, "pixel")
    seen, lock = {}, threading.Lock()

    def read(block):
        dataset = handles.get()
        with lock:
            seen.setdefault(threading.current_thread().name, set()).add(id(dataset))
        return handles.read([1, 2, 3], block.window)

    out = np.zeros_like(data)

    def write(block, values):
        out[:, block.row_off:block.row_off + block.height] = values

    with DatasetPerThread(str(path), "Input") as handles:
        run_blocks([Block(r, min(64, 900 - r), 1100) for r in range(0, 900, 64)], read,
                   lambda block, values: values, write=write, workers=2)
        opened = list(handles._opened)
    assert np.array_equal(out, data)
    assert all(len(ids) == 1 for ids in seen.values())
    assert len({i for ids in seen.values() for i in ids}) == len(seen) == len(opened)
    assert all(dataset.closed for dataset in opened)


@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_indices_on_several_workers_equal_one_worker(tmp_path, monkeypatch, interleave):
    src = tmp_path / f"s2_{interleave}.tif"
    data = write_s2(src, interleave)
    results = {}
    for workers in (1, 2, 3):
        monkeypatch.setattr(indices_compute, "thread_count", lambda threads=0, n=workers: n)
        out = tmp_path / f"indices_{workers}.tif"
        # A small budget: many blocks, last row and column narrower than the others.
        summary = compute_spectral_indices(str(src), str(out), indices=["NDVI", "SAVI", "NDWI"],
                                           memory_mb=4)
        with rasterio.open(out) as ds:
            results[workers] = (ds.read(), summary["valid_fraction"])
    assert np.array_equal(results[1][0], results[2][0])
    assert np.array_equal(results[1][0], results[3][0])
    assert results[1][1] == results[2][1] == results[3][1]
    ndvi = results[2][0][0]
    b04, b08 = data[1].astype(np.float32) / 10000, data[2].astype(np.float32) / 10000
    with np.errstate(invalid="ignore"):
        expected = (b08 - b04) / (b08 + b04)
    valid = np.all(data != 0, axis=0)
    np.testing.assert_allclose(ndvi[valid], expected[valid], rtol=1e-6)
    assert np.all(ndvi[~valid] == -9999)
    assert results[2][1]["NDVI"] == pytest.approx(valid.mean())


def test_cancelled_indices_leave_no_output(tmp_path):
    src = tmp_path / "s2.tif"
    write_s2(src, "pixel")
    out = tmp_path / "indices.tif"
    calls = []

    def cancel_after_two():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(CancelledError):
        compute_spectral_indices(str(src), str(out), memory_mb=4, is_cancelled=cancel_after_two)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2.tif"]
