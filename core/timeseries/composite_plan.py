"""The plan of a compositing run: inputs resolved into band sets, masks paired, the output grid,
the periods and the outputs, all checked before any pixel is read.

Inputs are grouped by band set: inputs of one group share their bands; groups must not share
bands (a Sentinel-1 group and a Sentinel-2 group can be composited together, a Sentinel-2 input
that lacks one band of the others cannot).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import BandError, InputError, NoDataError, OutputError
from ..io import raster as raster_io
from ..runtime import Log
from ..sensors import sentinel1 as sar
from .dates import raster_dates
from .inputs import (
    band_variable, check_distinct, check_output, check_overlaps, open_rasters, pair_masks,
    reference_grid, same_file,
)
from .options import CompositeOptions
from .outputs import sidecar_path
from .periods import Period, plan_periods
from .reading import Grid, sample_values

CLEAR_COUNT = "CLEAR_COUNT"


@dataclass
class CompositeInput:
    """One dated input raster, resolved."""

    path: str
    date: dt.date
    date_source: str
    group: int = 0
    variables: List[str] = field(default_factory=list)  # output names, in band order
    kinds: List[str] = field(default_factory=list)  # 'data', 'db' or 'linear' per band
    mask: Optional[str] = None
    mask_type: Optional[str] = None


@dataclass
class Group:
    """Inputs sharing one band set."""

    variables: List[str]
    s1: List[str]
    ndvi: Optional[tuple] = None  # ('NDVI',) or ('B04', 'B08') or None
    method: str = "median"


@dataclass
class CompositePlan:
    """What a compositing run will do, checked before any pixel is read."""

    inputs: List[CompositeInput]
    groups: List[Group]
    periods: List[Period]
    members: List[List[int]]
    grid: Grid
    grid_source: str
    method: str
    period_kind: str
    band_names: List[str]
    period_files: List[Optional[str]]

    @property
    def variables(self) -> List[str]:
        """Output variables of one period, CLEAR_COUNT last."""
        names = [v for g in self.groups for v in g.variables]
        return names + [CLEAR_COUNT]

    @property
    def empty_periods(self) -> List[str]:
        """Labels of periods without any acquisition."""
        return [p.label for p, m in zip(self.periods, self.members) if not m]


def period_file_path(folder: str, output_path: str, label: str) -> str:
    """Path of one period's raster in the output folder."""
    stem = os.path.splitext(os.path.basename(output_path or "composite.tif"))[0]
    return os.path.join(folder, f"{stem}_{label}.tif")


def plan_composite(stack: contextlib.ExitStack, o: CompositeOptions, log: Log, warn: Log) -> tuple:
    """Opens every raster (kept open in ``stack``) and resolves the plan.

    Returns:
        The plan, the input datasets and the mask datasets by path.

    Raises:
        LandFusionError: naming the problem and the fix.
    """
    items, datasets = _open_inputs(stack, o, log)
    signatures = [_read_band_set(item, ds) for item, ds in zip(items, datasets)]
    signatures = _assign_groups(items, signatures)
    groups = [_group(items, g, o.method, log) for g in range(len(signatures))]
    mask_datasets = _attach_masks(stack, o, items, log)
    grid, grid_source = _choose_grid(stack, o, items, datasets)
    check_overlaps(_rasters_on_grid(items, datasets, mask_datasets), grid)
    periods, members = _periods(items, o, warn)
    variables = [v for g in groups for v in g.variables] + [CLEAR_COUNT]
    band_names = [f"{p.label}_{v}" for p in periods for v in variables]
    period_files = _check_outputs(o, periods)
    plan = CompositePlan(items, groups, periods, members, grid, grid_source, o.method, o.period,
                         band_names, period_files)
    return plan, datasets, mask_datasets


def _open_inputs(stack: contextlib.ExitStack, o: CompositeOptions, log: Log) -> tuple:
    """Opens the inputs and finds their acquisition dates."""
    check_distinct(o.inputs, "'{path}' is given twice as input; give each acquisition once (two "
                             "acquisitions of the same day are fine as two files).")
    datasets = open_rasters(stack, o.inputs, "Input raster")
    found, sources = raster_dates(o.inputs, datasets, o.given_dates)
    for source in sorted(set(sources)):
        count = sources.count(source)
        where = "the given dates" if source == "given" else "the " + source
        log(f"Acquisition dates of {count} input(s) from {where}.")
    return [CompositeInput(p, d, s) for p, d, s in zip(o.inputs, found, sources)], datasets


def _read_band_set(item: CompositeInput, ds) -> tuple:
    """Names the bands of one input (their variables and kinds); returns its band set."""
    names = []
    for band, description in enumerate(raster_io.band_descriptions(ds), start=1):
        name, kind = band_variable(description, item.path, ds.count)
        if name is None:
            raise BandError(f"Band {band} of '{os.path.basename(item.path)}' has no name; "
                            "composites need named bands (band descriptions such as B04, "
                            "NDVI or VV). Name them, e.g. with landfusion:coregisterstack or "
                            "gdal_edit.py -mo, or a VRT.")
        if kind == "s1":
            units = sar.guess_units(sample_values(ds, band))
            if units is None:
                raise BandError(f"The units of band {band} ('{description}') of "
                                f"'{os.path.basename(item.path)}' cannot be told from its "
                                "values; name the band VV_dB or VV_linear (VH likewise).")
            kind = "db" if units == "dB" else "linear"
        names.append(name)
        item.kinds.append(kind)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BandError(f"'{os.path.basename(item.path)}' has band(s) {', '.join(twice)} more "
                        "than once; each band name must be unique.")
    item.variables = names
    return tuple(sorted(names))


def _assign_groups(items: List[CompositeInput], band_sets: List[tuple]) -> List[tuple]:
    """Gives every input the index of its band set; band sets must not share a band."""
    signatures: List[tuple] = []
    for item, signature in zip(items, band_sets):
        if signature not in signatures:
            signatures.append(signature)
        item.group = signatures.index(signature)
    for a in range(len(signatures)):
        for b in range(a):
            if set(signatures[a]) & set(signatures[b]):
                first = next(i for i in items if i.group == b)
                other = next(i for i in items if i.group == a)
                only_a = sorted(set(signatures[a]) - set(signatures[b]))
                only_b = sorted(set(signatures[b]) - set(signatures[a]))
                raise BandError(
                    f"The inputs have different band sets: '{os.path.basename(other.path)}' "
                    f"({', '.join(only_a) or 'no other band'} not in the other) vs "
                    f"'{os.path.basename(first.path)}' ({', '.join(only_b) or 'no other band'} "
                    "not in the other). Give inputs with the same bands (subset them first), or "
                    "inputs of different sensors with no band in common.")
    return signatures


def _s1_variables(item: CompositeInput) -> List[str]:
    return [v for v, k in zip(item.variables, item.kinds) if k in ("db", "linear")]


def _group(items: List[CompositeInput], g: int, method: str, log: Log) -> Group:
    """The band set ``g``: its variables, Sentinel-1 bands, NDVI source and method."""
    first = next(i for i in items if i.group == g)
    variables = list(first.variables)
    s1 = _s1_variables(first)
    for other in items:
        if other.group == g and set(_s1_variables(other)) != set(s1):
            raise BandError(f"'{os.path.basename(other.path)}' does not have the same "
                            "Sentinel-1 bands as the other inputs of its band set.")
    ndvi = ("NDVI",) if "NDVI" in variables else ("B04", "B08") \
        if {"B04", "B08"} <= set(variables) else None
    group_method = method
    if method == "maxndvi" and ndvi is None:
        if s1 and len(s1) == len(variables):
            group_method = "median"
            log(f"Sentinel-1 inputs ({', '.join(s1)}) have no NDVI: their composite is the "
                "median in linear power.")
        else:
            raise BandError(
                f"The max-NDVI best pixel needs an NDVI band, or B04 and B08, in every "
                f"optical input; '{os.path.basename(first.path)}' has "
                f"{', '.join(variables)}. Choose another method or add the bands.")
    return Group(variables, s1, ndvi, group_method)


def _attach_masks(stack: contextlib.ExitStack, o: CompositeOptions, items: List[CompositeInput],
                  log: Log) -> Dict[str, object]:
    """Opens the masks, pairs one with each input and sets its mask type."""
    if not o.masks:
        return {}
    mask_sets = open_rasters(stack, o.masks, "Mask raster")
    for i, path in enumerate(o.masks):
        if any(same_file(path, other) for other in o.masks[:i]):
            raise InputError(f"Mask '{path}' is given twice; give one mask per input.")
        if any(same_file(path, source) for source in o.inputs):
            raise InputError(f"'{path}' is given both as an input and as a mask.")
    pairing, types = pair_masks([i.date for i in items], [i.path for i in items], o.masks,
                                mask_sets, o.mask_type, log)
    for item, k in zip(items, pairing):
        item.mask, item.mask_type = o.masks[k], types[k]
    return dict(zip(o.masks, mask_sets))


def _choose_grid(stack: contextlib.ExitStack, o: CompositeOptions, items: List[CompositeInput],
                 datasets: list) -> tuple:
    """The output grid (the reference's, else the finest input's) and where it comes from."""
    grid = reference_grid(stack, o.reference)
    if grid is not None:
        grid_source = f"the reference raster '{os.path.basename(o.reference)}'"
    else:
        finest = min(range(len(items)), key=lambda k: (Grid.of(datasets[k]).pixel_size
                                                       if datasets[k].crs == datasets[0].crs
                                                       else float("inf"), k))
        grid = Grid.of(datasets[finest])
        grid_source = f"the finest input '{os.path.basename(items[finest].path)}'"
    if grid.crs is None:
        raise InputError("The output grid has no coordinate reference system; give georeferenced "
                         "inputs or a reference raster.")
    return grid, grid_source


def _rasters_on_grid(items: List[CompositeInput], datasets: list, mask_datasets: dict):
    """(dataset, name for messages) of every input and its mask."""
    for item, ds in zip(items, datasets):
        yield ds, f"Input '{os.path.basename(item.path)}'"
        if item.mask:
            yield mask_datasets[item.mask], f"Mask '{os.path.basename(item.mask)}'"


def _periods(items: List[CompositeInput], o: CompositeOptions, warn: Log) -> tuple:
    """The periods and, for each, its inputs in date order."""
    periods = plan_periods([i.date for i in items], o.period, o.custom_periods)
    members = [sorted((k for k, i in enumerate(items) if p.contains(i.date)),
                      key=lambda k: (items[k].date, k)) for p in periods]
    outside = [os.path.basename(i.path) for k, i in enumerate(items)
               if not any(k in m for m in members)]
    if outside:
        warn(f"{len(outside)} input(s) fall in no period and are not used: "
             f"{', '.join(outside[:5])}{' ...' if len(outside) > 5 else ''}.")
    if not any(members):
        raise NoDataError("No input date falls in any of the periods; check the custom periods "
                          "against the acquisition dates.")
    return periods, members


def _check_outputs(o: CompositeOptions, periods: List[Period]) -> List[Optional[str]]:
    """Checks the outputs; returns the path of every period's raster (None without a folder)."""
    folder = o.output_folder
    period_files = [period_file_path(folder, o.output_path, p.label) if folder else None
                    for p in periods]
    if folder and not os.path.isdir(folder):
        raise OutputError(f"The output folder '{folder}' does not exist; create it or choose "
                          "another.")
    outputs = [o.output_path, sidecar_path(o.output_path) if o.output_path else None]
    check_output(o.output_path, outputs + period_files, o.sources, "Composite")
    return period_files
