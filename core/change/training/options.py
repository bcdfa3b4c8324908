"""The options of a change-model training run: one dataclass, validated once, shared by the
algorithm's check and the run."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ...classification.train import algorithm_key, build_classifier
from ...errors import InputError
from ...io import raster as raster_io
from ..features import DEFAULT_GROUPS, DEFAULT_SCALES, FeatureSpec
from ..pairs import check_pairs

#: The fewest samples that may be drawn per pair and class.
MIN_SAMPLES_PER_PAIR = 100


def parse_class_names(text: str) -> dict:
    """Parses ``"1=no change,2=change"`` into ``{1: "no change", 2: "change"}``."""
    names = {}
    for item in (p.strip() for p in re.split(r"[,;\n]", text or "")):
        if not item:
            continue
        key, sep, name = item.partition("=")
        try:
            value = int(key.strip())
        except ValueError:
            value = None
        if not sep or value is None or not name.strip():
            raise InputError(f"'{item}' in the class names is not of the form id=name "
                             "(e.g. 1=no change,2=change).")
        names[value] = name.strip()
    return names


@dataclass
class TrainingOptions:
    """What to train on and how (see :func:`~.run.train_change_model` for each option).

    :meth:`validated` returns a normalised copy (lists, the classifier key, parsed class names)
    or raises :class:`InputError` naming the bad option; the check and the run both use it.
    """

    before: Sequence[str] = ()
    after: Sequence[str] = ()
    labels: Optional[Sequence[str]] = None
    label_nodata: Optional[int] = None
    training: Optional[object] = None
    class_field: Optional[str] = None
    class_names: Optional[str] = None
    algorithm: object = "random_forest"
    parameters: Optional[dict] = None
    feature_groups: Sequence[str] = DEFAULT_GROUPS
    scales: Sequence[int] = DEFAULT_SCALES
    samples_per_pair: int = 10000
    pixel_folds: int = 3
    seed: int = 0
    threads: int = 0
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB
    #: Filled by :meth:`validated`: the classifier key and the class names by id.
    key: str = ""
    names: dict = field(default_factory=dict)

    def validated(self) -> "TrainingOptions":
        """Returns a normalised, checked copy; reads no pixel.

        Raises:
            InputError: naming the option and the values allowed.
        """
        o = dataclasses.replace(self, before=list(self.before or []),
                                after=list(self.after or []),
                                labels=list(self.labels) if self.labels else None)
        check_pairs(o.before, o.after)
        o._validate_label_source()
        o.key = algorithm_key(o.algorithm)
        build_classifier(o.key, o.parameters, o.seed, o.threads)
        FeatureSpec([], list(o.feature_groups), list(o.scales))
        o.names = parse_class_names(o.class_names) if o.class_names else {}
        if o.samples_per_pair < MIN_SAMPLES_PER_PAIR:
            raise InputError(f"Draw at least {MIN_SAMPLES_PER_PAIR} samples per pair and class.")
        return o

    def _validate_label_source(self) -> None:
        if self.labels:
            if len(self.labels) != len(self.before):
                raise InputError(f"{len(self.before)} pair(s) but {len(self.labels)} label "
                                 "raster(s): give one label raster per pair, in the same order.")
            return
        if not self.training:
            raise InputError("Give label rasters (one per pair) or training polygons with a class "
                             "field.")
        if not self.class_field:
            raise InputError("Training polygons need a class field (integer class ids).")

    def inputs(self) -> list:
        """Every input file (pairs and label rasters), to keep outputs off them."""
        return self.before + self.after + list(self.labels or [])
