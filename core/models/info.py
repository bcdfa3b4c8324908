"""Model cards as HTML and text: what a LandFusion model needs and what it was trained on.

Used by ``landfusion:modelinfo`` (and by dialogs that show a model before it runs).
"""

from __future__ import annotations

import html
import json
import os
from typing import Optional

from .format import FORMAT_VERSION, RUNNERS, TASK_NAMES, ModelCard
from .reading import read_model

_STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 1.2em; color: #222; max-width: 70em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 1.4em; height: 1em; border: 1px solid #555;
          vertical-align: middle; }
.note { color: #8a4b00; } .muted { color: #666; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _num(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return _e(value)


def _table(headers, rows, numeric=()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='num'>{cell}</td>" if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _value_html(value) -> str:
    if isinstance(value, dict):
        return _e(", ".join(f"{k}={_plain(v)}" for k, v in value.items()))
    if isinstance(value, list):
        return _e(", ".join(_plain(v) for v in value))
    return _num(value) if isinstance(value, float) else _e(value)


def _plain(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def card_html(card: ModelCard, title: Optional[str] = None) -> str:
    """Returns the model card as a self-contained HTML page."""
    name = card.name or os.path.basename(card.path) or "model"
    parts = _summary_html(card, title or name) + _bands_html(card) + _classes_html(card) \
        + _grid_html(card) + _training_html(card) + _validation_html(card) + _other_html(card)
    if card.software:
        parts.append("<p class='muted'>Software: " + _e(", ".join(
            f"{k} {v}" for k, v in card.software.items())) + "</p>")
    return _page(f"Model card: {name}", "".join(parts))


def _summary_html(card: ModelCard, title: str) -> list:
    """Title, description, task and file facts, and the note on an older format."""
    runner, algorithm_id = RUNNERS.get(card.task, ("", ""))
    parts = [f"<h1>{_e(title)}</h1>"]
    if card.description:
        parts.append(f"<p>{_e(card.description)}</p>")
    facts = [("Task", f"{TASK_NAMES.get(card.task, card.task)} ({card.task}), run with "
                      f"{runner} ({algorithm_id})"),
             ("File", card.path or ""), ("Model format", str(card.format_version))]
    for label, value in (("Version", card.version), ("Author", card.author),
                         ("Licence", card.license), ("Created", card.created)):
        if value:
            facts.append((label, value))
    document = os.path.splitext(card.path)[0] + ".md" if card.path else ""
    if document and os.path.isfile(document):
        facts.append(("Model card document", document))
    parts.append(_table(["", ""], [(_e(k), _e(v)) for k, v in facts]))
    if card.format_version != FORMAT_VERSION:
        parts.append(f"<p class='note'>This file uses LandFusion model format "
                     f"{card.format_version}; it still runs. <tt>scripts/write_model_metadata.py "
                     f"MODEL --upgrade</tt> rewrites it as format {FORMAT_VERSION}.</p>")
    return parts


def _bands_html(card: ModelCard) -> list:
    """The input bands in order, with normalisation and training statistics when the card has
    them."""
    parts = ["<h2>Input bands, in order</h2>"]
    has_stats = any(card.band_stats)
    normalised = any(v != d for values, d in ((card.input_offset, 0.0), (card.input_scale, 1.0),
                                              (card.input_mean, 0.0), (card.input_std, 1.0))
                     for v in values) or any(v is not None for v in card.clip_min + card.clip_max)
    headers = ["#", "band", "unit", "role"]
    if normalised:
        headers += ["offset", "scale", "clip", "mean", "std"]
    if has_stats:
        headers += ["training min", "max", "mean", "std"]
    rows = []
    for i, band in enumerate(card.bands):
        row = [str(i + 1), _e(band or "(unnamed)"), _e(card.band_units[i] or "not stated"),
               _e(card.band_roles[i])]
        if normalised:
            clip = (card.clip_min[i], card.clip_max[i])
            row += [_num(card.input_offset[i]), _num(card.input_scale[i]),
                    "" if clip == (None, None) else f"{_num(clip[0])} to {_num(clip[1])}",
                    _num(card.input_mean[i]), _num(card.input_std[i])]
        if has_stats:
            stats = card.band_stats[i] or {}
            row += [_num(stats.get(k)) for k in ("min", "max", "mean", "std")]
        rows.append(row)
    parts.append(_table(headers, rows, numeric=set(range(4, len(headers)))))
    if normalised:
        parts.append("<p class='muted'>Model input = ((value + offset) &times; scale, clipped, "
                     "&minus; mean) / std.</p>")
    if has_stats:
        parts.append("<p class='muted'>Training statistics are checked against every raster "
                     "before it is classified: values far outside them stop the run.</p>")
    return parts


def _classes_html(card: ModelCard) -> list:
    return ["<h2>Classes</h2>", _table(["value", "name", "colour"], [
        (str(c.value), _e(c.name), f"<span class='swatch' style='background:{c.hex()}'></span> "
                                   f"{c.hex()}") for c in card.classes], numeric={0})]


def _grid_html(card: ModelCard) -> list:
    """Tiles or patches, pixel size, CRS and nodata; nothing when the card states none."""
    grid = []
    if card.task == "segmentation":
        grid.append(("Tiles", f"{card.tile_size} px, overlap {card.default_overlap()} px, "
                              f"size multiple of {card.size_divisor}"))
    elif card.task == "patch_classifier":
        grid.append(("Patches", f"{card.patch_size or 'from the graph'} px, default stride "
                                f"{card.patch_stride or 'a quarter of the patch'} px"))
    if card.pixel_size:
        grid.append(("Pixel size", f"{card.pixel_size:.3g} m"))
    if card.crs:
        grid.append(("Training CRS", _crs_name(card.crs)))
    if card.nodata_values:
        grid.append(("Nodata input values", ", ".join(_plain(v) for v in card.nodata_values)))
    if card.output_nodata is not None:
        grid.append(("Class raster nodata", str(card.output_nodata)))
    if not grid:
        return []
    return ["<h2>Grid and tiling</h2>", _table(["", ""], [(_e(k), _e(v)) for k, v in grid])]


def _training_html(card: ModelCard) -> list:
    if not card.training:
        return []
    return ["<h2>Training</h2>", _table(["", ""], [(_e(k.replace("_", " ")), _value_html(v))
                                                   for k, v in card.training.items()])]


def _validation_html(card: ModelCard) -> list:
    """Validation scores, then the per-class table when the metrics hold one."""
    if not card.metrics:
        return []
    parts = ["<h2>Validation</h2>"]
    scalars = [(k, v) for k, v in card.metrics.items() if not isinstance(v, (list, dict))]
    nested = [(k, v) for k, v in card.metrics.items() if isinstance(v, dict) and v]
    if scalars or nested:
        parts.append(_table(["", ""], [(_e(k.replace("_", " ")), _value_html(v))
                                       for k, v in scalars + nested]))
    per_class = card.metrics.get("per_class")
    if isinstance(per_class, list) and per_class and isinstance(per_class[0], dict):
        keys = [k for k in per_class[0] if k not in ("value",)]
        parts.append(_table(keys, [[_value_html(item.get(k)) for k in keys]
                                   for item in per_class], numeric=set(range(1, len(keys)))))
    return parts


def _other_html(card: ModelCard) -> list:
    """Task-specific entries (a format-1 ``model_card`` text unpacked)."""
    shown = dict(card.extra)
    if isinstance(shown.get("model_card"), str):  # format 1: a JSON text of its own
        try:
            shown.update(json.loads(shown.pop("model_card")))
        except ValueError:
            pass
    if not shown:
        return []
    return ["<h2>Other</h2>", _table(["", ""], [(_e(k), _value_html(v)) for k, v in shown.items()])]


def _crs_name(wkt: str) -> str:
    try:
        from rasterio.crs import CRS

        crs = CRS.from_wkt(wkt)
        epsg = crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else (crs.to_dict().get("proj") or wkt[:60])
    except Exception:  # a CRS rasterio cannot parse: show its start
        return wkt.split('"')[1] if '"' in wkt else wkt[:60]


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def card_text(card: ModelCard) -> str:
    """A few lines describing the model, for logs."""
    runner, algorithm_id = RUNNERS.get(card.task, ("", ""))
    bands = ", ".join(card.band_description(i) for i in range(card.band_count))
    lines = [f"{card.name or os.path.basename(card.path)}: {TASK_NAMES.get(card.task, card.task)} "
             f"run with {runner} ({algorithm_id}); format {card.format_version}.",
             f"Bands in order: {bands}.",
             "Classes: " + ", ".join(f"{c.value} {c.name}" for c in card.classes) + "."]
    scores = {k: v for k, v in card.metrics.items() if isinstance(v, (int, float))}
    if scores:
        lines.append("Validation: " + ", ".join(f"{k} {v:.3g}" for k, v in scores.items()) + ".")
    return "\n".join(lines)


def bundled_listing_html(models: dict) -> str:
    """An HTML page listing the bundled models (``{id: path}``) with their descriptions."""
    rows = []
    for model_id, path in models.items():
        try:
            card = read_model(path)
            described = card.description or ""
            rows.append((f"<b>{_e(model_id)}</b>", _e(card.name), _e(card.task),
                         _e(", ".join(card.band_description(i) for i in range(card.band_count))),
                         _e(", ".join(c.name for c in card.classes)), _e(described)))
        except Exception as exc:  # a damaged bundled file is listed, not fatal
            rows.append((f"<b>{_e(model_id)}</b>", "", "", "", "", _e(f"unreadable: {exc}")))
    body = ("<h1>Bundled LandFusion models</h1>"
            + (_table(["id", "name", "task", "bands", "classes", "description"], rows) if rows
               else "<p>No model is bundled with this installation.</p>")
            + "<p class='muted'>Run <i>Model information</i> with a model to see its full card. "
              "Model cards with training data and scores: resources/models/*.md.</p>")
    return _page("Bundled LandFusion models", body)


def describe_model(model_path: Optional[str], html_path: str, bundled: Optional[dict] = None,
                   log=None) -> dict:
    """Writes the HTML card of ``model_path`` (or the listing of ``bundled`` models when no
    model is given) to ``html_path``.

    Returns:
        ``{"html": path, "task": str, "bands": [...], "classes": [...]}`` (empty lists for the
        listing).

    Raises:
        ModelError: the model cannot be read (pickles refused before parsing).
    """
    from ..io.outputs import atomic_output, check_writable

    check_writable(html_path, "Model card")
    if model_path:
        card = read_model(model_path)
        page = card_html(card)
        result = {"task": card.task, "bands": card.bands, "classes": [c.name for c in card.classes]}
        if log:
            log(card_text(card))
    else:
        page = bundled_listing_html(bundled or {})
        result = {"task": "", "bands": [], "classes": []}
        if log:
            log("Bundled models: " + (", ".join(bundled or {}) or "none") + ".")
    with atomic_output(html_path, "Model card") as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(page)
    result["html"] = html_path
    return result
