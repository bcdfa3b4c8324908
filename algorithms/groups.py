"""Toolbox groups in workflow order, each with a stable id and a family icon."""

import os

ICONS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons")

#: Group id (stable: models and scripts refer to it) -> name shown in the toolbox.
GROUPS = {
    "preprocessing": "1 · Preprocessing",
    "features": "2 · Features",
    "classification": "3 · Classification",
    "accuracy": "4 · Accuracy",
    "change": "5 · Change and time series",
}

PREPROCESSING, FEATURES, CLASSIFICATION, ACCURACY, CHANGE = GROUPS


def group_name(group_id):
    """Returns the English name of a group (the id itself when unknown)."""
    return GROUPS.get(group_id, group_id)


def group_icon(group_id):
    """Returns the SVG icon of a group's algorithm family, or None."""
    path = os.path.join(ICONS, f"{group_id}.svg")
    return path if os.path.exists(path) else None
