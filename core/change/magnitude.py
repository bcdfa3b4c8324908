"""The per-pixel magnitude of each change detection method, computed block by block.

:class:`Magnitude` decides once, from the pair's bands (and the model), what a method reads and
writes: the common Sentinel-2 reflectance bands for change-vector analysis, the backscatter
bands and their units for the log-ratio, the index band or the bands of its formula for the
index difference, the feature spec for a change model. :meth:`Magnitude.compute` then turns the
BEFORE and AFTER arrays of one block into magnitude bands and a validity mask.
"""

from __future__ import annotations

import numpy as np

from ..errors import BandError, InputError
from ..runtime import no_log
from ..sensors.bands import is_s2_band_name, normalise_s2_band
from .features import compute_features
from .pairs import comparable_band


class Magnitude:
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
