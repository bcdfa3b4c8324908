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

#: Other spellings of the group ids, mapped to them.
_ALIASES = {"accuracy assessment": ACCURACY, "timeseries": CHANGE, "time_series": CHANGE,
            "time series": CHANGE, "monitoring": CHANGE, "change detection": CHANGE,
            "changedetection": CHANGE, "change and time series": CHANGE}


def group_id(text):
    """Returns the stable id of a group given by id, alias or English name."""
    key = str(text or "").strip().lower()
    if key in GROUPS:
        return key
    for gid, name in GROUPS.items():
        if key == name.lower() or key == name.split("· ", 1)[-1].lower():
            return gid
    return _ALIASES.get(key, key)


def group_name(gid, fallback=""):
    """Returns the English name of a group (``fallback`` or the id when unknown)."""
    return GROUPS.get(gid) or fallback or gid


def group_icon(gid):
    """Returns the SVG icon of a group's algorithm family, or None."""
    path = os.path.join(ICONS, f"{gid}.svg")
    return path if os.path.exists(path) else None
