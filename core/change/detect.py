"""Bi-temporal change detection: change model, change-vector analysis, SAR log-ratio, index
difference.

Every method makes a per-pixel magnitude on the BEFORE grid (AFTER warped onto it when needed),
then a class raster by thresholding it:

- ``model``: the change probability of a change model (:mod:`model`); threshold: the model's;
- ``cva``: change-vector analysis, the Euclidean norm of the difference over the common
  Sentinel-2 reflectance bands;
- ``log_ratio``: Sentinel-1 log-ratio, |10 log10(I2 / I1)| with I the backscatter in linear power
  (dB inputs are converted first), averaged over the common polarisations;
- ``index_difference``: |index(AFTER) - index(BEFORE)| for a spectral index (a band of that name,
  or computed from the reflectance bands with the formulas of :mod:`core.indices`); the signed
  difference is written as the magnitude raster's second band.

Without a threshold, methods other than ``model`` use Otsu's threshold, computed on a histogram of
the magnitude raster (:data:`OTSU_BINS` bins between 0 and the largest magnitude) collected block
by block: it is exact to within one bin width, which the result reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..choices import Choices
from ..errors import InputError
from ..io import raster as raster_io
from ..io.classmap import ClassInfo
from ..io.outputs import atomic_output, check_writable, remove_outputs
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from .features import bytes_per_pixel
from .magnitude import Magnitude
from .pairs import Pair

#: Methods in the order of the Processing enum (stable API: the index is the value).
METHODS = Choices((
    ("model", "Change model"),
    ("cva", "Change-vector analysis (reflectance bands)"),
    ("log_ratio", "Sentinel-1 log-ratio (linear units)"),
    ("index_difference", "Index difference"),
))
METHOD_NAMES = dict(zip(METHODS, METHODS.titles))
OTSU_BINS = 4096
BINARY_CLASSES = (ClassInfo(0, "no change", (200, 200, 200)), ClassInfo(1, "change", (220, 30, 30)))


def method_key(method) -> str:
    """Returns the method key for a key, name or enum index."""
    if isinstance(method, (int, np.integer)):
        if not 0 <= int(method) < len(METHODS):
            raise InputError(f"Method index {method} is not between 0 and {len(METHODS) - 1}.")
        return METHODS[int(method)]
    text = str(method).strip().lower().replace("-", "_").replace(" ", "_")
    for key, name in METHOD_NAMES.items():
        if text in (key, name.lower().replace("-", "_").replace(" ", "_")):
            return key
    if text.isdigit():
        return method_key(int(text))
    raise InputError(f"Unknown change detection method '{method}'; choose one of "
                     f"{', '.join(METHODS)}.")


def otsu_threshold(histogram: np.ndarray, edges: np.ndarray) -> float:
    """Otsu's threshold (maximum between-class variance) of a histogram."""
    counts = histogram.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    total = counts.sum()
    if total <= 0:
        raise InputError("The magnitude has no valid pixel; nothing to threshold.")
    w0 = np.cumsum(counts)
    w1 = total - w0
    m0 = np.cumsum(counts * centres)
    mean_total = m0[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (mean_total * w0 / total - m0) ** 2 / (w0 * w1 / total)
    between[~np.isfinite(between)] = -1
    k = int(np.argmax(between))
    return float(edges[k + 1])


@dataclass
class DetectionOptions:
    """How to detect change (see :func:`change_detection` for each option).

    :meth:`validated` returns a checked copy with the method key, or raises :class:`InputError`
    naming the bad option; the algorithm's check and the run both use it.
    """

    method: object = "cva"
    magnitude_path: Optional[str] = None
    model_path: Optional[str] = None
    index: Optional[str] = None
    threshold: Optional[float] = None
    threads: int = 0
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB
    #: Filled by :meth:`validated`: the method key.
    key: str = ""

    def validated(self) -> "DetectionOptions":
        """Returns a checked copy; reads no file.

        Raises:
            InputError: naming the option and the fix.
        """
        o = dataclasses.replace(self, key=method_key(self.method))
        if o.threshold is not None and not np.isfinite(o.threshold):
            raise InputError("The threshold must be a number.")
        if o.key == "model":
            if not o.model_path:
                raise InputError("The change-model method needs a MODEL (trained with 'Train "
                                 "change model').")
            if o.threshold is not None and not 0 <= o.threshold <= 1:
                raise InputError("A change model's threshold is a probability between 0 and 1.")
        elif o.key == "index_difference" and not o.index:
            raise InputError("The index difference needs an index (e.g. NDVI or NDBI).")
        return o


@dataclass
class DetectionPlan:
    """Everything decided before a pixel is read."""

    pair: Pair
    magnitude: Magnitude
    classes: List[ClassInfo]
    class_path: str
    magnitude_target: str
    keep_magnitude: bool
    threshold: Optional[float]
    how: str
    blocks: list


def check_detection(**options) -> DetectionOptions:
    """Checks the options of :func:`change_detection` without opening a raster."""
    return DetectionOptions(**options).validated()


def change_detection(
    before: str,
    after: str,
    output_path: str,
    method="cva",
    magnitude_path: Optional[str] = None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> dict:
    """Maps change between two rasters of the same area.

    Args:
        before, after: the two dates (bands matched by name; AFTER warped onto BEFORE's grid).
        output_path: class raster (0 no change / 1 change; a model's own classes for ``model``).
        method: key, name or enum index of :data:`METHODS`.
        magnitude_path: float raster of the magnitude (change probability for a model).
        options: the other fields of :class:`DetectionOptions`: ``model_path`` (change model,
            ``model`` only), ``index`` (index name, ``index_difference`` only), ``threshold``
            (decision threshold on the magnitude; None: the model's, or Otsu's), ``threads``
            (model inference), ``memory_mb``.

    Returns:
        Output paths, the threshold used and how it was chosen, and pixel counts.
    """
    o = DetectionOptions(method=method, magnitude_path=magnitude_path, **options).validated()
    _check_outputs(before, after, output_path, o)
    model = _open_model(o, log, warn)
    with contextlib.ExitStack() as stack:
        stack.enter_context(raster_io.gdal_env())
        plan = _plan(before, after, output_path, o, model, stack, log, warn)
        result = _run(plan, progress, is_cancelled, log)
    result.update(method=o.key, output=output_path, magnitude=magnitude_path)
    return result


def _check_outputs(before: str, after: str, output_path: str, o: DetectionOptions) -> None:
    inputs = {os.path.realpath(x) for x in (before, after, o.model_path or "") if x}
    for p in (p for p in (output_path, o.magnitude_path) if p):
        check_writable(p, "Output")
        if os.path.realpath(p) in inputs:
            raise InputError(f"The output '{p}' is also an input; choose another file name.")
    if o.magnitude_path and os.path.realpath(o.magnitude_path) == os.path.realpath(output_path):
        raise InputError("The class output and the magnitude output must be different files.")


def _open_model(o: DetectionOptions, log: Log, warn: Log) -> Optional[tuple]:
    """The change model ``(session, card, change)`` of the ``model`` method, else None."""
    if o.key != "model":
        if o.model_path:
            warn("A MODEL is only used by the change-model method; it is ignored.")
        return None
    from .model import describe, read_change_model

    model = read_change_model(o.model_path, o.threads)
    log(f"Change model: {describe(model[2])}.")
    return model


def _plan(before, after, output_path, o: DetectionOptions, model, stack, log,
          warn) -> DetectionPlan:
    pair = stack.enter_context(Pair(
        before, after, bands=model[2]["before_bands"] if model else None,
        what="The change model"))
    if pair.coverage < 0.999:
        warn(f"The AFTER raster covers {100 * pair.coverage:.1f} % of the BEFORE raster; "
             "pixels outside are nodata.")
    if pair.resampled:
        log("The AFTER raster is warped onto the BEFORE grid (bilinear).")
    magnitude = Magnitude(o.key, pair, o.index, model, log, warn)
    threshold, how = o.threshold, "given"
    if threshold is None and model:
        threshold, how = float(model[2]["threshold"]), "stored in the model"
    elif threshold is None:
        how = "Otsu"
    target = o.magnitude_path
    if not target:
        folder = os.path.dirname(os.path.abspath(output_path))
        target = os.path.join(stack.enter_context(_temp_dir(folder)), "magnitude.tif")
    bpp = bytes_per_pixel(magnitude.spec) if magnitude.key == "model" else \
        4 * (4 * len(pair.bands) + 4)
    blocks = raster_io.plan_blocks(pair.width, pair.height, bpp, o.memory_mb / 3)
    return DetectionPlan(pair, magnitude, list(model[1].classes) if model else
                         list(BINARY_CLASSES), output_path, target, bool(o.magnitude_path),
                         threshold, how, blocks)


@contextlib.contextmanager
def _temp_dir(folder):
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix=".landfusion-", dir=folder)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class _BlockContext:
    """What the block functions of the magnitude pass share."""

    plan: DetectionPlan
    dst: object
    writer: object
    top: float = 0.0


def read_block(ctx: _BlockContext, block) -> tuple:
    """The BEFORE and AFTER arrays of a block, with the magnitude's halo."""
    return ctx.plan.pair.read(block, ctx.plan.magnitude.halo)


def work_block(ctx: _BlockContext, block, data) -> tuple:
    """(magnitude bands, valid, labels or None) of a block."""
    return ctx.plan.magnitude.compute(*data)


def write_block(ctx: _BlockContext, block, result) -> None:
    """Writes a block's magnitude (and, with a known threshold, its classes)."""
    values, valid, labels = result
    values = np.where(valid[None], values, raster_io.FLOAT_NODATA).astype(np.float32)
    ctx.dst.write(values, window=block.window)
    if valid.any():
        ctx.top = max(ctx.top, float(values[0][valid].max()))
    if ctx.writer is not None:
        p = ctx.plan
        ctx.writer.write(block.window, _labels(values[0], valid, labels, p.threshold, p.classes,
                                               p.magnitude), valid)


def _run(plan: DetectionPlan, progress, is_cancelled, log) -> dict:
    """The magnitude pass (classes written on the way when the threshold is known), then the
    Otsu pass and a class pass when it is not; the summary."""
    import rasterio

    from ..io.class_writer import ClassificationWriter

    two_pass = plan.threshold is None
    magnitude = plan.magnitude
    with contextlib.ExitStack() as stack:
        temp = stack.enter_context(atomic_output(plan.magnitude_target,
                                                           "Magnitude raster"))
        profile = raster_io.float_profile(plan.pair.before, len(magnitude.bands_out))
        dst = stack.enter_context(rasterio.open(temp, "w", **profile))
        for i, name in enumerate(magnitude.bands_out, start=1):
            dst.set_band_description(i, name)
        writer = None if two_pass else stack.enter_context(
            ClassificationWriter(plan.pair.before, plan.classes, plan.class_path))
        ctx = _BlockContext(plan, dst, writer)
        raster_io.run_blocks(plan.blocks, lambda block: read_block(ctx, block),
                             lambda block, data: work_block(ctx, block, data),
                             sub_progress(progress, 0.0, 0.7 if two_pass else 1.0),
                             is_cancelled, write=lambda block, out: write_block(ctx, block, out))
        dst.close()
        if two_pass:
            plan.threshold, width = _otsu_pass(temp, ctx.top, plan.blocks, is_cancelled)
            log(f"Otsu's threshold: {plan.threshold:.6g} (histogram of {OTSU_BINS} bins over "
                f"0-{ctx.top:.6g}; exact to within {width:.2g}).")
            writer = _class_pass(plan, temp, progress, is_cancelled)
        counts = dict(zip([c.name for c in plan.classes], writer.class_counts.tolist()))
        valid_pixels = writer.valid_pixels
        if not plan.keep_magnitude:
            stack.pop_all().close()
            with contextlib.suppress(OSError):
                os.remove(plan.magnitude_target)
    return _summary(plan, ctx.top, counts, valid_pixels, log)


def _class_pass(plan: DetectionPlan, magnitude_path: str, progress, is_cancelled):
    """Writes the classes from the magnitude raster; returns the closed class writer."""
    import rasterio

    from ..io.class_writer import ClassificationWriter

    with rasterio.open(magnitude_path) as src, ClassificationWriter(
            plan.pair.before, plan.classes, plan.class_path) as writer:
        for i, block in enumerate(plan.blocks):
            check_cancelled(is_cancelled)
            values = src.read(1, window=block.window)
            valid = values != raster_io.FLOAT_NODATA
            writer.write(block.window, _labels(values, valid, None, plan.threshold, plan.classes,
                                               plan.magnitude), valid)
            progress(0.85 + 0.15 * (i + 1) / len(plan.blocks))
    return writer


def _summary(plan: DetectionPlan, top: float, counts: dict, valid_pixels: int, log) -> dict:
    """Styles the kept magnitude; refuses a result without valid pixels; the result entries."""
    magnitude, classes, threshold = plan.magnitude, plan.classes, plan.threshold
    if valid_pixels == 0:
        remove_outputs([plan.class_path, os.path.splitext(plan.class_path)[0] + ".qml"]
                       + ([plan.magnitude_target] if plan.keep_magnitude else []))
        raise InputError("No pixel is valid on both dates (nodata everywhere the rasters meet); "
                         "nothing was written.")
    if plan.keep_magnitude:
        _write_ramp_qml(os.path.splitext(plan.magnitude_target)[0] + ".qml",
                        magnitude.bands_out[0], top if magnitude.key != "model" else 1.0)
    changed = valid_pixels - counts.get(classes[0].name if magnitude.key != "model" else
                                        _no_change_name(classes, magnitude), 0)
    log(f"Change: {changed} of {valid_pixels} valid pixels ({100 * changed / valid_pixels:.2f} %) "
        f"at threshold {threshold:.6g} ({plan.how}).")
    return {"threshold": float(threshold), "threshold_method": plan.how, "class_counts": counts,
            "valid_pixels": int(valid_pixels), "changed_pixels": int(changed),
            "changed_fraction": changed / valid_pixels, "bands": magnitude.bands_out,
            "classes": classes}


def _no_change_name(classes, magnitude) -> str:
    return next(c.name for c in classes if c.value == magnitude.no_change)


def _labels(values, valid, labels, threshold, classes, magnitude):
    changed = values >= threshold
    if magnitude.key == "model":
        no_change = magnitude.no_change
        if labels is None:
            change_value = next(c.value for c in classes if c.value != no_change)
            out = np.where(changed, change_value, no_change)
        else:
            out = np.where(changed, labels, no_change)
    else:
        out = changed.astype(np.int64)
    return np.where(valid, out, 0)


def _otsu_pass(path, top, blocks, is_cancelled) -> tuple:
    import rasterio

    top = top if top > 0 else 1.0
    edges = np.linspace(0.0, top, OTSU_BINS + 1)
    histogram = np.zeros(OTSU_BINS, np.int64)
    with rasterio.open(path) as src:
        for block in blocks:
            check_cancelled(is_cancelled)
            values = src.read(1, window=block.window)
            values = values[values != raster_io.FLOAT_NODATA]
            histogram += np.histogram(values, bins=edges)[0]
    return otsu_threshold(histogram, edges), top / OTSU_BINS


def _write_ramp_qml(path: str, name: str, top: float) -> None:
    """A QGIS pseudocolour style (white to red) for a magnitude or probability raster."""
    top = top if top > 0 else 1.0
    stops = [(0.0, "#ffffff"), (0.5, "#fdae61"), (1.0, "#d7191c")]
    items = "\n".join(f'          <item alpha="255" value="{top * f:.6g}" label="{top * f:.4g}" '
                      f'color="{c}"/>' for f, c in stops)
    text = f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1"
        classificationMin="0" classificationMax="{top:.6g}">
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0"
            minimumValue="0" maximumValue="{top:.6g}">
{items}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
