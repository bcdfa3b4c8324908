"""The engine behind ``landfusion:accuracyreport``: a class map assessed against reference
samples, in named steps (options, mapped areas, reference pairing, class list, metrics and
area-adjusted estimates, report files).

Orientation everywhere: rows = map classes, columns = reference classes (see
:mod:`.estimates`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..choices import POLYGON_MODES, SAMPLING_DESIGNS
from ..errors import InputError, NoDataError
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                      no_progress, sub_progress)
from .estimates import error_matrix, plain_metrics, stratified_estimates

#: More distinct values than this in the map and the reference means they are not class maps.
MAX_CLASSES = 1000


@dataclass
class AccuracyOptions:
    """What to assess and which reports to write (see :func:`assess_accuracy`)."""

    class_field: Optional[str] = None
    design: str = "stratified"
    polygon_mode: str = "majority"
    output_html: Optional[str] = None
    output_json: Optional[str] = None
    output_csv: Optional[str] = None
    map_nodata: Optional[float] = None
    title: Optional[str] = None

    def validated(self) -> "AccuracyOptions":
        """Returns a checked copy; raises :class:`InputError` naming the bad option."""
        from ..io.outputs import check_writable

        o = dataclasses.replace(self)
        if o.design not in SAMPLING_DESIGNS:
            raise InputError(f"Unknown sampling design '{o.design}'; use one of "
                             f"{', '.join(SAMPLING_DESIGNS)}.")
        if o.polygon_mode not in POLYGON_MODES:
            raise InputError(f"Unknown polygon mode '{o.polygon_mode}'; use one of "
                             f"{', '.join(POLYGON_MODES)}.")
        for key, path in o.outputs.items():
            if path:
                check_writable(path, f"{key.upper()} report")
        if not any(o.outputs.values()):
            raise InputError("Choose at least one report output (HTML, JSON or CSV).")
        return o

    @property
    def outputs(self) -> dict:
        """The report files by format."""
        return {"html": self.output_html, "json": self.output_json, "csv": self.output_csv}


def assess_accuracy(
    classification: str,
    reference: str,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> dict:
    """Assesses a class map against reference samples and writes the report files.

    Args:
        classification: the class raster (the map).
        reference: reference points/polygons (any OGR vector; ``file|layername=x`` accepted) or a
            reference class raster.
        options: the fields of :class:`AccuracyOptions`:

            - ``class_field``: field of the reference layer holding the reference class
              (integer value or class name); not used for a reference raster.
            - ``design``: 'stratified' (stratified random by map class), 'simple' (simple
              random) or 'unknown'; the area-adjusted estimators are computed for the first two.
            - ``polygon_mode``: for polygon references: 'majority', 'centroid' or 'all_pixels'.
            - ``output_html``, ``output_json``, ``output_csv``: report files (each optional, one
              at least).
            - ``map_nodata``: overrides the classification raster's nodata value.
            - ``title``: title of the report.

    Returns:
        The report as a JSON-friendly dict (the content of the JSON output), with the written
        paths under ``outputs``.

    Raises:
        LandFusionError subclasses naming the problem; no output is left behind on failure.
    """
    from ..io.classmap import read_class_styling
    from .areas import count_classes
    from .report import write_reports

    o = AccuracyOptions(**options).validated()
    log("Counting mapped pixels per class...")
    counts = count_classes(classification, o.map_nodata,
                           progress=sub_progress(progress, 0, 0.4), is_cancelled=is_cancelled)
    styled = {c.value: c for c in read_class_styling(classification)}
    if not styled:
        log("The classification raster has no category names; classes are shown by value.")
    samples = _read_reference(classification, reference, o, styled, counts.nodata,
                              sub_progress(progress, 0.4, 0.8), is_cancelled, log, warn)
    log(f"{samples.count} reference samples paired with the map.")
    values = _class_values(counts.pixels, samples)
    classes = _class_list(values, styled, samples.reference_names)
    names = [c["name"] for c in classes]
    matrix = error_matrix(samples.map_values, samples.reference_values, values, samples.weights)
    notes = list(samples.notes) + _class_notes(values, names, matrix, counts.pixels)
    mapped_ha = [counts.area_ha.get(v, 0.0) for v in values]
    estimates = _area_adjusted(o.design, matrix, mapped_ha, counts.total_area_ha, names,
                               samples.independent, notes, warn)
    for note in notes[len(samples.notes):]:
        warn(note)
    result = _report(classification, o, samples, counts, values, classes, matrix, estimates,
                     notes)
    check_cancelled(is_cancelled)
    result["outputs"] = write_reports(result, o.output_html, o.output_json, o.output_csv)
    progress(1.0)
    return result


def _is_vector(path: str) -> bool:
    from osgeo import gdal

    from ..io.vector import split_ogr_source

    file_path, _ = split_ogr_source(path)
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.OpenEx(file_path, gdal.OF_VECTOR)
        return ds is not None and ds.GetLayerCount() > 0
    finally:
        gdal.PopErrorHandler()


def _read_reference(classification, reference, o: AccuracyOptions, styled, map_nodata,
                    progress, is_cancelled, log, warn):
    """Pairs the reference (vector or raster) with the map."""
    from .reference import read_raster_reference, read_vector_reference

    if _is_vector(reference):
        return read_vector_reference(
            classification, reference, o.class_field or "",
            {v: c.name for v, c in styled.items()}, o.polygon_mode, map_nodata=map_nodata,
            progress=progress, is_cancelled=is_cancelled, log=log, warn=warn)
    return read_raster_reference(classification, reference, map_nodata=map_nodata,
                                 progress=progress, is_cancelled=is_cancelled, log=log,
                                 warn=warn)


def _class_values(pixels: dict, samples) -> List[int]:
    """The class values of the matrix: mapped or sampled on either side."""
    values = sorted(set(pixels) | set(np.unique(samples.map_values).tolist())
                    | set(np.unique(samples.reference_values).tolist()))
    if len(values) > MAX_CLASSES:
        raise InputError(f"The classification and reference hold {len(values)} distinct values; "
                         "a class raster has a few classes. Check that the inputs are class maps.")
    return values


def _class_list(values, styled, reference_names) -> list:
    """``[{"value", "name", "color"}]``: the map's names and colours, else the reference's names
    and palette colours."""
    from ..io.classmap import palette_color

    classes = []
    for index, value in enumerate(values):
        if value in styled:
            c = styled[value]
            classes.append({"value": value, "name": c.name, "color": c.hex()})
        else:
            name = reference_names.get(value, str(value))
            classes.append({"value": value, "name": name,
                            "color": "#%02x%02x%02x" % palette_color(index)})
    return classes


def _class_notes(values, names, matrix: np.ndarray, pixels: dict) -> list:
    """Notes on classes only one side (map or reference) knows."""
    notes = []
    for i, value in enumerate(values):
        if matrix[:, i].sum() > 0 and pixels.get(value, 0) == 0:
            notes.append(f"Class '{names[i]}' occurs in the reference but the map never assigns "
                         "it (its producer's accuracy is 0).")
        elif pixels.get(value, 0) > 0 and matrix[:, i].sum() == 0 and matrix[i].sum() > 0:
            notes.append(f"Map class '{names[i]}' is never found in the reference sample (its "
                         "user's accuracy is 0).")
    return notes


def _area_adjusted(design: str, matrix: np.ndarray, mapped_ha, total_area_ha: float, names,
                   independent: bool, notes: list, warn: Log) -> Optional[dict]:
    """The area-adjusted estimates for a known design (None otherwise), with their notes."""
    if design == "unknown":
        notes.append("Sampling design unknown: the area-adjusted estimators are not computed, "
                     "because the sample need not represent the map's classes in known "
                     "proportions. The sample-count metrics describe this sample only.")
        return None
    try:
        estimates = stratified_estimates(matrix, mapped_ha, total_area_ha=total_area_ha,
                                         names=names)
    except NoDataError as exc:
        notes.append(f"Area-adjusted estimates not computed: {exc}")
        warn(str(exc))
        return None
    notes.extend(estimates.pop("notes"))
    if design == "simple":
        notes.append("Simple random sample: the stratified estimators are applied with the "
                     "map classes as post-strata (Olofsson et al. 2014).")
    if not independent:
        notes.append("The confidence intervals assume independent samples; with all "
                     "pixels of polygons or of a reference raster they are too narrow.")
    return estimates


def _report(classification: str, o: AccuracyOptions, samples, counts, values, classes,
            matrix: np.ndarray, estimates: Optional[dict], notes: list) -> dict:
    """The report as a JSON-friendly dict (what the report writers render)."""
    from datetime import datetime, timezone

    return {
        "title": o.title or "Accuracy assessment",
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "classification": classification,
        "reference": samples.source,
        "class_field": o.class_field if samples.kind != "raster" else None,
        "orientation": "rows = map classes, columns = reference classes",
        "design": o.design,
        "design_title": SAMPLING_DESIGNS.title(o.design),
        "classes": classes,
        "samples": {
            "count": samples.count, "kind": samples.kind, "polygon_mode": samples.mode or None,
            "independent": samples.independent, "features": samples.features,
            "outside_map": samples.outside, "on_map_nodata": samples.on_map_nodata,
            "unlabelled": samples.unlabelled,
        },
        "map": {
            "nodata": counts.nodata,
            "pixel_area_ha": counts.pixel_area_ha,
            "pixels": [int(counts.pixels.get(v, 0)) for v in values],
            "area_ha": [counts.area_ha.get(v, 0.0) for v in values],
            "total_area_ha": counts.total_area_ha,
        },
        "error_matrix": matrix.tolist(),
        "metrics": plain_metrics(matrix),
        "area_adjusted": estimates,
        "confidence_level": 0.95,
        "notes": notes,
    }
