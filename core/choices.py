"""The option vocabularies of LandFusion: every enumerated choice an engine understands, once.

Each vocabulary is a :class:`Choices`: a tuple of stable keys (what the engines take and what
model files, JSON sidecars and scripts store) that also carries an English title per key (what
the Processing dialogs show). The Processing algorithms build their enum parameters from these,
in this order, so the index of an option never depends on the algorithm file; both the index,
the key and the title are accepted as parameter values.
"""

from __future__ import annotations

from typing import Iterable, Tuple


class Choices(tuple):
    """A tuple of option keys in a fixed order, with a display title per key."""

    def __new__(cls, pairs: Iterable[Tuple[str, str]]):
        pairs = tuple(pairs)
        instance = super().__new__(cls, (key for key, _ in pairs))
        instance.titles = tuple(title for _, title in pairs)
        return instance

    def title(self, key: str) -> str:
        """Returns the display title of ``key``."""
        return self.titles[self.index(key)]

    def __getnewargs__(self):
        return (tuple(zip(self, self.titles)),)


#: Classifier families of ``train_classifier`` (stable API: the index is the Processing value).
CLASSIFIERS = Choices((
    ("random_forest", "Random Forest"),
    ("svm", "SVM (RBF kernel)"),
    ("knn", "K-nearest neighbours"),
    ("decision_tree", "Decision tree"),
    ("mlp", "MLP (neural network)"),
    ("hist_gradient_boosting", "Histogram gradient boosting"),
    ("lightgbm", "LightGBM (fast gradient boosting)"),
))

#: Sampling designs understood by ``assess_accuracy``.
SAMPLING_DESIGNS = Choices((
    ("stratified", "Stratified random by map class"),
    ("simple", "Simple random"),
    ("unknown", "Unknown (no area-adjusted estimates)"),
))

#: How reference polygons become samples.
POLYGON_MODES = Choices((
    ("majority", "One sample per polygon: majority map class"),
    ("centroid", "One sample per polygon: map class at the centroid"),
    ("all_pixels", "All pixels of each polygon (not independent)"),
))

#: How a stratified sample is shared between classes.
ALLOCATIONS = Choices((
    ("equal", "Equal per class"),
    ("proportional", "Proportional to mapped area"),
    ("olofsson", "Minimum per class, rest proportional (Olofsson et al. 2014)"),
))

#: Sentinel-1 backscatter units.
S1_UNITS = Choices((("dB", "dB"), ("linear", "linear")))

#: What a Sentinel-2 cloud mask given to the stack is.
MASK_TYPES = Choices((
    ("scl", "Scene classification (SCL)"),
    ("binary", "Cloud mask (non-zero = cloud)"),
))

#: Values written for Sentinel-2 bands.
S2_VALUES = Choices((
    ("reflectance", "Reflectance ((DN + offset) / scale)"),
    ("dn", "Digital numbers as stored"),
))

#: Speckle filters for Sentinel-1.
SPECKLE_FILTERS = Choices((("none", "None"), ("lee", "Lee")))

#: Temporal statistics per polarisation across Sentinel-1 dates.
TEMPORAL_STATISTICS = Choices((
    ("mean", "mean"), ("std", "std"), ("min", "min"), ("max", "max"),
))

#: Stack presets (the empty key: no preset).
PRESETS = Choices((
    ("", "None (use the options below)"),
    ("rouen", "Rouen study: 20 bands from 4 Sentinel-1 dates + 1 Sentinel-2 scene"),
))

#: Sentinel-2 product levels.
PRODUCT_LEVELS = Choices((("L2A", "L2A"), ("L1C", "L1C")))

#: GeoTIFF compressions.
COMPRESSIONS = Choices((
    ("NONE", "NONE"), ("ZSTD", "ZSTD"), ("DEFLATE", "DEFLATE"), ("LZW", "LZW"),
))

#: How a mask given to classification or the time-series algorithms is read (0 = clear, used).
CLEAR_MASK_TYPES = Choices((
    ("scl", "Sentinel-2 scene classification (SCL)"),
    ("cloudmask", "LandFusion cloud mask (landfusion:cloudmask output)"),
    ("binary", "Binary mask (non-zero = not clear)"),
))

#: Periods of a temporal composite.
COMPOSITE_PERIODS = Choices((
    ("month", "Month"),
    ("season", "Season (DJF, MAM, JJA, SON)"),
    ("year", "Year"),
    ("whole", "Whole date range"),
    ("custom", "Custom periods"),
))

#: How the clear observations of a period are combined.
COMPOSITE_METHODS = Choices((
    ("median", "Median of clear observations"),
    ("mean", "Mean of clear observations"),
    ("maxndvi", "Max-NDVI best pixel"),
    ("min", "Minimum"),
    ("max", "Maximum"),
))

#: Per-band statistics of ``temporalfeatures``.
TEMPORAL_FEATURES = Choices((
    ("mean", "Mean"), ("std", "Standard deviation"), ("min", "Minimum"), ("max", "Maximum"),
    ("p10", "10th percentile"), ("p90", "90th percentile"), ("amplitude", "Amplitude (max - min)"),
    ("trend", "Linear trend per year"), ("doymax", "Day of year of the maximum"),
    ("count", "Number of clear observations"),
))
