"""Training change models from labelled BEFORE/AFTER pairs.

Each pair (typically one city or one scene) gives samples: every labelled pixel's change features
(:mod:`~core.change.features`). Change is rare (often 1-4 % of the pixels), so

- samples are drawn per pair and class (all change pixels up to a cap, a uniform share of the
  no-change pixels), and each sample carries the inverse of its drawing rate as a weight, so
  precision, recall and F1 are estimated for the true class proportions of every pair;
- classifiers that accept class weights are trained with balanced class weights; the others on
  balanced samples;
- validation leaves one pair out at a time (pixels of one pair never sit on both sides of a
  split; neighbouring pixels are nearly identical, so pixel-level folds are optimistic and are
  only reported beside); with a single pair, spatial tiles of the pair are the groups;
- the decision threshold on the change probability is the one that maximises the F1 of change
  over the pooled held-out predictions. It is stored in the model. The report also gives, per
  held-out pair, the F1 at the threshold chosen on the OTHER pairs only (never tuned on the pair
  it is scored on) and at 0.5.

The steps, one module each: :mod:`.options` (one dataclass, validated once for the check and the
run), :mod:`.plan` (pairs, features and labels, decided before a sample is drawn),
:mod:`.samples` (the block function that draws samples), :mod:`.validation` (grouped and
pixel-level validation, the threshold) and :mod:`.run` (the engine functions, export and report).
"""

from .options import TrainingOptions, parse_class_names
from .run import check_training, train_change_model
from .validation import THRESHOLDS, best_threshold, binary_scores, f1_curve

__all__ = [
    "THRESHOLDS", "TrainingOptions", "best_threshold", "binary_scores", "check_training",
    "f1_curve", "parse_class_names", "train_change_model",
]
