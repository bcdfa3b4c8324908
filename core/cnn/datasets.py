"""Training samples for ``landfusion:traincnn``: the sample set and what every reader shares.

No PyTorch here: samples are numpy arrays, read window by window with rasterio. The readers:

- :mod:`.raster_chips`: segmentation tiles cut from input rasters, labelled by a label raster
  per input or by training polygons/points, and patches cut around labelled points;
- :mod:`.patch_folder`: a folder with one sub-folder of patch rasters per class (the EuroSAT
  layout).

Every sample carries a group: its input (or patch file), or its spatial block. Validation holds
out whole groups, never pixels of a tile used for training (:func:`split_validation`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import BandError, InputError, NoDataError
from ..io import raster as raster_io
from ..io.class_writer import valid_pixels
from ..sensors.bands import input_band_names, match_bands

#: Upper bound, in MiB, of the tiles a segmentation run may hold in memory.
MAX_SAMPLES_MB = 4096
#: Label index of unlabelled pixels.
IGNORE = -1
VALIDATION_MODES = ("inputs", "blocks")


@dataclass
class SampleSet:
    """Labelled samples, before normalisation.

    Attributes:
        x: (n, bands, size, size) float32 physical values; NaN where a band is nodata.
        y: (n, size, size) int64 class indexes (segmentation, ``IGNORE`` where unlabelled) or (n,)
            class indexes (patch classification).
        groups: (n,) group key of each sample (input, patch file or spatial block).
        sources: (n,) index of the input (or class folder) each sample came from.
        bands: band names in channel order.
        classes: the classes, in index order (``ClassInfo`` with the label values).
        inputs: the input files (or patch folder) the samples came from.
    """

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    sources: np.ndarray
    bands: list
    classes: list
    inputs: list
    task: str
    patch_size: int
    pixel_size: Optional[float] = None
    notes: list = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Memory held by the samples."""
        return int(self.x.nbytes + self.y.nbytes)


@dataclass
class InputBands:
    """The bands a reader takes from one raster: 1-based indexes and names."""

    what: str
    indexes: list
    names: list
    pixel_size: Optional[float]


def input_bands(dataset, what: str, given_names: Optional[Sequence[str]],
                wanted: Optional[Sequence[str]], patch_size: Optional[int] = None) -> InputBands:
    """Names the raster's bands, picks the wanted ones and checks that a patch fits in it.

    Raises:
        BandError: unnamed, repeated or missing bands.
        InputError: the raster is smaller than one patch.
    """
    names = raster_band_names(dataset, given_names, what)
    indexes, picked = band_indexes(names, wanted, what)
    if patch_size is not None:
        check_patch_fits(dataset, patch_size, what)
    return InputBands(what, indexes, picked, raster_io.pixel_size_m(dataset))


def read_bands(dataset, indexes: Sequence[int], window=None) -> np.ndarray:
    """The bands over ``window`` (whole raster: None) as float32, NaN where a band is nodata."""
    raw = dataset.read(indexes, window=window).astype("float32")
    raw[:, ~valid_pixels(raw, [dataset.nodatavals[i - 1] for i in indexes])] = np.nan
    return raw


def raster_band_names(dataset, given: Optional[Sequence[str]], what: str) -> list:
    """The names of a raster's bands: the user's list, else the band descriptions.

    Raises:
        BandError: when the names are missing, duplicated, or the list has the wrong length.
    """
    names = input_band_names(dataset, given or None)
    upper = [n.upper() for n in names]
    if not all(names) or len(set(upper)) != len(upper):
        shown = ", ".join(n or f"(band {i + 1} unnamed)" for i, n in enumerate(names))
        raise BandError(
            f"{what} has unnamed or repeated band names ({shown}); a trained model records its "
            "bands by name. Give the input band names in order (e.g. VV,VH or B02,B03,B04,B08).")
    return names


def band_indexes(names: list, wanted: Optional[Sequence[str]], what: str) -> tuple:
    """``(1-based indexes, names)`` of the wanted bands (all bands when none is named)."""
    if not wanted:
        return list(range(1, len(names) + 1)), list(names)
    indexes = match_bands(names, wanted, what)
    return indexes, [names[i - 1] for i in indexes]


def check_patch_fits(dataset, patch_size: int, what: str) -> None:
    """Raises :class:`InputError` when the raster is smaller than one patch."""
    if dataset.width < patch_size or dataset.height < patch_size:
        raise InputError(
            f"The patch size ({patch_size} px) is larger than {what} ({dataset.width} x "
            f"{dataset.height} px). Choose a patch size of at most "
            f"{min(dataset.width, dataset.height)} px.")


def input_key(inputs: Sequence[str], index: int) -> str:
    """The validation group of a whole input: its file name (with its position when two inputs
    share a name)."""
    names = [os.path.basename(p) for p in inputs]
    name = names[index]
    return name if names.count(name) == 1 else f"{index + 1}:{name}"


def block_key(source: int, row: int, col: int, block: int) -> str:
    """The validation group of a spatial block of one input."""
    return f"{source}:{row // block}:{col // block}"


def split_validation(samples: SampleSet, fraction: float, seed: int, mode: str) -> np.ndarray:
    """Chooses the validation samples: whole groups (inputs, patch files or spatial blocks).

    Patch folders are split per class, so every class is validated. Returns a bool mask.

    Raises:
        InputError: when there are not enough groups to hold any out.
    """
    rng = np.random.default_rng(seed)
    n = len(samples.groups)
    mask = np.zeros(n, dtype=bool)
    if not 0.0 < fraction < 1.0:
        raise InputError(f"The validation fraction must be between 0 and 1, got {fraction}.")
    if samples.task == "patch_classification" and len(set(samples.groups)) == n:
        for k in range(len(samples.classes)):
            members = np.flatnonzero(samples.y == k)
            if members.size >= 2:
                take = max(1, int(round(fraction * members.size)))
                mask[rng.permutation(members)[:take]] = True
        return mask
    keys = sorted(set(samples.groups))
    if len(keys) < 2:
        hint = ("choose spatial blocks for validation, or give more inputs"
                if mode == "inputs" else "use a smaller validation block or a larger input")
        raise InputError(
            f"Validation holds out whole {'inputs' if mode == 'inputs' else 'spatial blocks'}, "
            f"but all samples come from one ({keys[0]}); {hint}.")
    order = [keys[i] for i in rng.permutation(len(keys))]
    counts = {k: int((samples.groups == k).sum()) for k in keys}
    held = 0
    for key in order[:-1]:
        if held >= fraction * n:
            break
        mask |= samples.groups == key
        held += counts[key]
    return mask


def band_statistics(x: np.ndarray, seed: int, max_values: int = 2_000_000) -> dict:
    """Per-band clip range (0.1th/99.9th percentile), mean and standard deviation of the clipped
    valid values of the training samples."""
    rng = np.random.default_rng(seed)
    stats = {"clip_min": [], "clip_max": [], "mean": [], "std": []}
    for b in range(x.shape[1]):
        values = x[:, b].ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise NoDataError(f"Band {b + 1} holds no valid value in the training samples.")
        if values.size > max_values:
            values = rng.choice(values, max_values, replace=False)
        lo, hi = np.percentile(values, [0.1, 99.9])
        clipped = np.clip(values, lo, hi)
        std = float(clipped.std())
        stats["clip_min"].append(float(lo))
        stats["clip_max"].append(float(hi))
        stats["mean"].append(float(clipped.mean()))
        stats["std"].append(std if std > 1e-6 else 1.0)
    return stats


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Median-frequency class weights (Eigen and Fergus 2015), clipped to [0.1, 10]."""
    counts = np.asarray(counts, dtype="float64")
    freq = counts / counts.sum()
    weights = np.median(freq[freq > 0]) / np.maximum(freq, 1e-12)
    return np.clip(weights, 0.1, 10.0).astype("float32")
