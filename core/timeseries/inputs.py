"""Opening and checking the dated inputs of the time-series engines (composites and features).

Both engines open every input, mask and reference raster in one ``contextlib.ExitStack``, name
each band's variable, pair masks with inputs, check that every raster overlaps the output grid
and that no output overwrites an input, all before any pixel is read.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Iterable, List, Optional, Sequence, Tuple

from ..errors import InputError, OutputError
from ..io import raster as raster_io
from ..io.outputs import check_raster_output
from ..sensors import sentinel1 as sar
from ..sensors.bands import is_s2_band_name, normalise_s2_band
from ..stack import masks as mask_rules
from .dates import date_from_metadata, date_from_name
from .reading import Grid, check_overlap

_S1_NAME = re.compile(r"^(?:S1_)?(?:(?:\d{8}|T\d+)_)?(VV|VH|HH|HV)(?:_(dB|lin|linear))?$",
                      re.IGNORECASE)


def band_variable(description: str, path: str, count: int) -> tuple:
    """Output name and kind of one input band: ('B04', 'data'), ('VV_dB', 'db'|'linear'|'s1'), ...

    The kind 's1' means Sentinel-1 of unknown units (decided from the values).
    """
    text = (description or "").strip()
    if not text and count == 1:
        pol = sar.polarisation_from_text(os.path.basename(path))
        if pol:
            text = pol
    if not text:
        return None, None
    match = _S1_NAME.match(text)
    if match:
        units = (match.group(2) or "").lower()
        kind = "db" if units == "db" else "linear" if units.startswith("lin") else "s1"
        return f"{match.group(1).upper()}_dB", kind
    if is_s2_band_name(text):
        return normalise_s2_band(text), "data"
    return text, "data"


def same_file(a: str, b: str) -> bool:
    """True when both paths name one file (or, for missing files, one absolute path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_distinct(paths: Sequence[str], message: str) -> None:
    """Raises :class:`InputError` (``message`` formatted with ``path``) for a file given twice."""
    for i, path in enumerate(paths):
        for j in range(i):
            if same_file(path, paths[j]):
                raise InputError(message.format(path=path))


def check_outputs_not_inputs(outputs: Sequence[Optional[str]], inputs: Sequence[str]) -> None:
    """Raises :class:`OutputError` when an output would overwrite an input or another output."""
    outputs = [o for o in outputs if o]
    for i, out in enumerate(outputs):
        for source in inputs:
            if source and os.path.exists(out) and same_file(out, source):
                raise OutputError(f"The output '{out}' is one of the inputs; choose another "
                                  "file name (inputs are never overwritten).")
        for other in outputs[:i]:
            if os.path.abspath(other) == os.path.abspath(out):
                raise OutputError(f"Two outputs are the same file '{out}'; give different names.")


def open_rasters(stack: contextlib.ExitStack, paths: Sequence[str], what: str) -> list:
    """Opens every raster, kept open until ``stack`` closes."""
    return [stack.enter_context(raster_io.open_raster(p, what)) for p in paths]


def reference_grid(stack: contextlib.ExitStack, reference: Optional[str]) -> Optional[Grid]:
    """The grid of the reference raster, or None when none is given."""
    if not reference:
        return None
    return Grid.of(stack.enter_context(raster_io.open_raster(reference, "Reference grid raster")))


def pair_masks(input_dates: Sequence, inputs: Sequence[str], masks: Sequence[str], mask_sets,
               mask_type: str, log) -> Tuple[List[int], List[str]]:
    """Pairs one mask with each dated input (by date, else by order) and checks each mask.

    Returns:
        The mask index of every input, and the mask type of every mask.
    """
    dates = [date_from_name(p) or date_from_metadata(d) for p, d in zip(masks, mask_sets)]
    pairing = mask_rules.match_masks(input_dates, inputs, masks, dates, log)
    types: List[Optional[str]] = [None] * len(masks)
    for k in pairing:
        types[k] = mask_rules.check_mask_raster(masks[k], mask_sets[k], mask_type, log)
    return pairing, types


def check_overlaps(rasters: Iterable[tuple], grid: Grid) -> None:
    """Checks that every (dataset, what) pair covers some of the grid."""
    for dataset, what in rasters:
        check_overlap(dataset, grid, what)


def check_output(output_path: Optional[str], outputs: Sequence[Optional[str]],
                 sources: Sequence[str], what: str) -> None:
    """Checks the outputs against the inputs and each other, and the main output's format."""
    check_outputs_not_inputs(outputs, sources)
    if output_path:
        check_raster_output(output_path, what)
