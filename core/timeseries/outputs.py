"""Writing the outputs of the time-series engines: float32 rasters and JSON sidecars, each
written to a temporary file and moved into place only when complete."""

from __future__ import annotations

import contextlib
import json

from ..io import raster as raster_io
from ..io.outputs import atomic_output, atomic_raster_output
from .reading import Grid


def open_float_output(stack: contextlib.ExitStack, path: str, what: str, grid: Grid, count: int):
    """Opens a float32 raster of ``count`` bands on ``grid`` for writing; it replaces ``path``
    when ``stack`` closes without an error."""
    import rasterio

    temp = stack.enter_context(atomic_raster_output(path, what))
    return stack.enter_context(rasterio.open(temp, "w", **raster_io.float_profile(grid, count)))


def sidecar_path(output_path: str) -> str:
    """The JSON sidecar written beside a composite or a features raster."""
    return output_path + ".json"


def write_sidecar(path: str, sidecar: dict, what: str) -> None:
    """Writes a JSON sidecar atomically."""
    with atomic_output(path, what) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(sidecar, handle, indent=2)
