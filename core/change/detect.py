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
import os
from typing import Optional

import numpy as np

from ..choices import Choices
from ..errors import BandError, InputError
from ..io import raster as raster_io
from ..io.outputs import atomic_output, check_writable
from ..io.classmap import ClassInfo
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from ..sensors.bands import is_s2_band_name, normalise_s2_band
from .features import compute_features, bytes_per_pixel
from .pairs import Pair, comparable_band

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


class _Magnitude:
    """Computes the magnitude of one method for a block of a pair."""

    def __init__(self, key, pair, index_name=None, model=None, log=no_log, warn=no_log):
        self.key = key
        self.pair = pair
        self.halo = 0
        self.bands_out = ["magnitude"]
        names = [comparable_band(b) for b in pair.bands]
        if key == "model":
            self.session, self.info, self.change = model
            self.spec = self.change["spec"]
            self.halo = self.spec.halo
            self.bands_out = ["change_probability"]
            self.no_change = int(self.change["no_change_class"])
            self.values = np.array([c.value for c in self.info.classes])
            self.statistics = None
            if self.spec.needs_statistics:
                from .features import difference_statistics

                self.statistics = difference_statistics(pair)
                log("Difference statistics of the pair computed (for standardised features).")
        elif key == "cva":
            self.use = [i for i, n in enumerate(names) if is_s2_band_name(n)]
            if not self.use:
                raise BandError(
                    f"Change-vector analysis needs Sentinel-2 reflectance bands (B02, B03, ...) on "
                    f"both dates; the common bands are {', '.join(pair.bands)}.")
            self.bands_out = ["cva_magnitude"]
            log(f"Change-vector analysis over {len(self.use)} bands: "
                f"{', '.join(pair.bands[i] for i in self.use)}.")
        elif key == "log_ratio":
            self._plan_log_ratio(names, log, warn)
        else:
            self._plan_index(index_name, names, log, warn)

    def _plan_log_ratio(self, names, log, warn):
        from ..sensors.sentinel1 import guess_units, polarisation_from_text

        chosen = {}
        for i, name in enumerate(self.pair.bands):
            upper = name.upper()
            if any(t in upper for t in ("RATIO", "RVI", "_DIFF", "MEAN", "STD")):
                continue
            pol = polarisation_from_text(name)
            if pol and pol not in chosen:
                chosen[pol] = i
        if not chosen:
            raise BandError(
                f"The log-ratio needs Sentinel-1 backscatter bands named by polarisation (VV, VH, "
                f"S1_VV_dB, ...) on both dates; the common bands are {', '.join(self.pair.bands)}.")
        self.use = list(chosen.values())
        self.db = []
        for i in self.use:
            name = self.pair.bands[i]
            if "DB" in name.upper():
                self.db.append(True)
                continue
            from ..io.raster import Block

            sample = self.pair.read(Block(0, min(256, self.pair.height),
                                          min(256, self.pair.width)))[0][i]
            units = guess_units(sample[np.isfinite(sample)])
            if units is None:
                raise InputError(
                    f"Cannot tell whether band '{name}' holds dB or linear backscatter; name it "
                    "with '_dB' (e.g. VV_dB) or give linear power.")
            self.db.append(units == "dB")
        self.bands_out = ["log_ratio_dB"]
        log("Log-ratio over " + ", ".join(
            f"{self.pair.bands[i]} ({'dB, converted to linear' if d else 'linear'})"
            for i, d in zip(self.use, self.db)) + ".")

    def _plan_index(self, index_name, names, log, warn):
        from ..indices.formulas import INDICES

        if not index_name:
            raise InputError("The index difference needs an index (e.g. NDVI or NDBI).")
        wanted = index_name.strip().upper()
        self.bands_out = [f"{wanted}_abs_difference", f"{wanted}_difference"]
        if wanted in names:
            self.index_band = names.index(wanted)
            log(f"Index difference of the band '{self.pair.bands[self.index_band]}' of both dates.")
            return
        if wanted not in INDICES:
            raise InputError(f"Unknown index '{index_name}'; choose a band of both rasters or one "
                             f"of {', '.join(INDICES)}.")
        self.index_band = None
        self.index = INDICES[wanted]
        lookup = {normalise_s2_band(n): i for i, n in enumerate(names) if is_s2_band_name(n)}
        missing = [b for b in self.index.bands if b not in lookup]
        if missing:
            raise BandError(
                f"{wanted} needs bands {', '.join(self.index.bands)} on both dates; missing "
                f"{', '.join(missing)} (common bands: {', '.join(self.pair.bands)}).")
        self.index_lookup = {b: lookup[b] for b in self.index.bands}
        from ..io.raster import Block

        sample = self.pair.read(Block(0, min(256, self.pair.height), min(256, self.pair.width)))[0]
        level = np.nanmedian(sample[list(self.index_lookup.values())]) if np.isfinite(
            sample).any() else 0.0
        self.scale = 10000.0 if level > 2.0 else 1.0
        if self.scale != 1.0:
            warn(f"The bands look like digital numbers (median {level:.0f}); {wanted} is computed "
                 "on DN / 10000.")
        log(f"Index difference of {wanted} = {self.index.formula}, computed on both dates.")

    def compute(self, before, after) -> tuple:
        """Returns (magnitude bands (k, rows, cols), valid, labels or None)."""
        if self.key == "model":
            features, valid = compute_features(self.spec, before, after, self.halo,
                                               self.statistics)
            from .model import predict_change

            change, probabilities = predict_change(self.session, self.info,
                                                   features[:, valid].T)
            magnitude = np.full(valid.shape, np.nan, np.float32)
            magnitude[valid] = change
            best = None
            if len(self.values) > 2:
                masked = probabilities.copy()
                masked[:, list(self.values).index(self.no_change)] = -1
                best = np.full(valid.shape, self.no_change, np.int64)
                best[valid] = self.values[np.argmax(masked, axis=1)]
            return magnitude[None], valid, best
        b, a = before[self.use] if self.key != "index_difference" else before, \
            after[self.use] if self.key != "index_difference" else after
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if self.key == "cva":
                magnitude = np.sqrt(np.sum((a - b) ** 2, axis=0))
                out = magnitude[None]
            elif self.key == "log_ratio":
                ratios = []
                for k, is_db in enumerate(self.db):
                    i1 = 10.0 ** (b[k] / 10.0) if is_db else b[k]
                    i2 = 10.0 ** (a[k] / 10.0) if is_db else a[k]
                    i1 = np.where(i1 > 0, i1, np.nan)
                    i2 = np.where(i2 > 0, i2, np.nan)
                    ratios.append(np.abs(10.0 * np.log10(i2 / i1)))
                out = np.mean(ratios, axis=0)[None]
            else:
                if self.index_band is not None:
                    d = a[self.index_band] - b[self.index_band]
                else:
                    from ..indices.formulas import evaluate_index

                    def value(x):
                        bands = {n: x[i] / self.scale for n, i in self.index_lookup.items()}
                        return evaluate_index(self.index.name, bands)[0]

                    d = value(a) - value(b)
                out = np.stack([np.abs(d), d])
        out = out.astype(np.float32)
        valid = np.all(np.isfinite(out), axis=0)
        return out, valid, None


def change_detection(
    before: str,
    after: str,
    output_path: str,
    method="cva",
    magnitude_path: Optional[str] = None,
    model_path: Optional[str] = None,
    index: Optional[str] = None,
    threshold: Optional[float] = None,
    threads: int = 0,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Maps change between two rasters of the same area.

    Args:
        before, after: the two dates (bands matched by name; AFTER warped onto BEFORE's grid).
        output_path: class raster (0 no change / 1 change; a model's own classes for ``model``).
        method: key, name or enum index of :data:`METHODS`.
        magnitude_path: float raster of the magnitude (change probability for a model).
        model_path: change model (``model`` only).
        index: index name (``index_difference`` only).
        threshold: decision threshold on the magnitude; None: the model's, or Otsu's.

    Returns:
        Output paths, the threshold used and how it was chosen, and pixel counts.
    """
    key = method_key(method)
    outputs = [p for p in (output_path, magnitude_path) if p]
    for p in outputs:
        check_writable(p, "Output")
        if os.path.realpath(p) in {os.path.realpath(x) for x in (before, after, model_path or "")
                                   if x}:
            raise InputError(f"The output '{p}' is also an input; choose another file name.")
    if magnitude_path and os.path.realpath(magnitude_path) == os.path.realpath(output_path):
        raise InputError("The class output and the magnitude output must be different files.")
    if threshold is not None and not np.isfinite(threshold):
        raise InputError("The threshold must be a number.")
    model = None
    classes = list(BINARY_CLASSES)
    if key == "model":
        if not model_path:
            raise InputError("The change-model method needs a MODEL (trained with 'Train change "
                             "model').")
        from .model import describe, read_change_model

        model = read_change_model(model_path, threads)
        classes = list(model[1].classes)
        log(f"Change model: {describe(model[2])}.")
        if threshold is not None and not 0 <= threshold <= 1:
            raise InputError("A change model's threshold is a probability between 0 and 1.")
    elif model_path:
        warn("A MODEL is only used by the change-model method; it is ignored.")
    with contextlib.ExitStack() as stack:
        stack.enter_context(raster_io.gdal_env())
        pair = stack.enter_context(Pair(
            before, after, bands=model[2]["before_bands"] if model else None,
            what="The change model"))
        if pair.coverage < 0.999:
            warn(f"The AFTER raster covers {100 * pair.coverage:.1f} % of the BEFORE raster; "
                 "pixels outside are nodata.")
        if pair.resampled:
            log("The AFTER raster is warped onto the BEFORE grid (bilinear).")
        magnitude = _Magnitude(key, pair, index, model, log, warn)
        if threshold is None and key == "model":
            threshold, how = float(model[2]["threshold"]), "stored in the model"
        elif threshold is None:
            how = "Otsu"
        else:
            how = "given"
        folder = os.path.dirname(os.path.abspath(output_path))
        target = magnitude_path
        if not target:
            temp_dir = stack.enter_context(_temp_dir(folder))
            target = os.path.join(temp_dir, "magnitude.tif")
        result = _run(pair, magnitude, classes, output_path, target, bool(magnitude_path),
                      threshold, how, memory_mb, progress, is_cancelled, log)
    result.update(method=key, output=output_path, magnitude=magnitude_path)
    return result


@contextlib.contextmanager
def _temp_dir(folder):
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix=".landfusion-", dir=folder)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(pair, magnitude, classes, class_path, magnitude_target, keep_magnitude, threshold, how,
         memory_mb, progress, is_cancelled, log) -> dict:
    import rasterio

    from ..io.class_writer import ClassificationWriter

    spec_bpp = bytes_per_pixel(magnitude.spec) if magnitude.key == "model" else \
        4 * (4 * len(pair.bands) + 4)
    blocks = raster_io.plan_blocks(pair.width, pair.height, spec_bpp, memory_mb / 3)
    two_pass = threshold is None
    top = 0.0
    with contextlib.ExitStack() as stack:
        temp = stack.enter_context(atomic_output(magnitude_target, "Magnitude raster"))
        profile = raster_io.float_profile(pair.before, len(magnitude.bands_out))
        dst = stack.enter_context(rasterio.open(temp, "w", **profile))
        for i, name in enumerate(magnitude.bands_out, start=1):
            dst.set_band_description(i, name)
        writer = None
        if not two_pass:
            writer = stack.enter_context(ClassificationWriter(pair.before, classes, class_path))

        def read(block):
            return pair.read(block, magnitude.halo)

        def work(block, data):
            values, valid, labels = magnitude.compute(*data)
            return values, valid, labels

        def write(block, result):
            nonlocal top
            values, valid, labels = result
            values = np.where(valid[None], values, raster_io.FLOAT_NODATA).astype(np.float32)
            dst.write(values, window=block.window)
            if valid.any():
                top = max(top, float(values[0][valid].max()))
            if writer is not None:
                writer.write(block.window, _labels(values[0], valid, labels, threshold, classes,
                                                   magnitude), valid)

        raster_io.run_blocks(blocks, read, work, sub_progress(progress, 0.0,
                                                              0.7 if two_pass else 1.0),
                             is_cancelled, write=write)
        dst.close()
        if two_pass:
            threshold, width = _otsu_pass(temp, top, blocks, is_cancelled)
            log(f"Otsu's threshold: {threshold:.6g} (histogram of {OTSU_BINS} bins over "
                f"0-{top:.6g}; exact to within {width:.2g}).")
            with rasterio.open(temp) as src, ClassificationWriter(
                    pair.before, classes, class_path) as writer:
                for i, block in enumerate(blocks):
                    check_cancelled(is_cancelled)
                    values = src.read(1, window=block.window)
                    valid = values != raster_io.FLOAT_NODATA
                    writer.write(block.window, _labels(values, valid, None, threshold, classes,
                                                       magnitude), valid)
                    progress(0.85 + 0.15 * (i + 1) / len(blocks))
        counts = dict(zip([c.name for c in classes], writer.class_counts.tolist()))
        valid_pixels = writer.valid_pixels
        if not keep_magnitude:
            stack.pop_all().close()
            with contextlib.suppress(OSError):
                os.remove(magnitude_target)
    if keep_magnitude:
        _write_ramp_qml(os.path.splitext(magnitude_target)[0] + ".qml", magnitude.bands_out[0],
                        top if magnitude.key != "model" else 1.0)
    if valid_pixels == 0:
        from ..io.outputs import remove_outputs

        remove_outputs([class_path, os.path.splitext(class_path)[0] + ".qml"] +
                       ([magnitude_target] if keep_magnitude else []))
        raise InputError("No pixel is valid on both dates (nodata everywhere the rasters meet); "
                         "nothing was written.")
    changed = valid_pixels - counts.get(classes[0].name if magnitude.key != "model" else
                                        _no_change_name(classes, magnitude), 0)
    log(f"Change: {changed} of {valid_pixels} valid pixels ({100 * changed / valid_pixels:.2f} %) "
        f"at threshold {threshold:.6g} ({how}).")
    return {"threshold": float(threshold), "threshold_method": how, "class_counts": counts,
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
