"""The HTML report of a ``traincnn`` run: one self-contained file (inline SVG chart, no scripts)."""

from __future__ import annotations

import html
import math


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def learning_curves_svg(history: list, width: int = 640, height: int = 260) -> str:
    """Training and validation loss per epoch (left axis) and validation accuracy (right axis)."""
    if not history:
        return "<p>No epoch completed.</p>"
    left, right, top, bottom = 56, 56, 16, 36
    epochs = [h["epoch"] for h in history]
    losses = [v for h in history for v in (h["train_loss"], h["val_loss"]) if math.isfinite(v)]
    hi = max(losses) * 1.05 if losses else 1.0
    span_x = max(1, epochs[-1] - epochs[0])

    def sx(epoch):
        return left + (epoch - epochs[0]) / span_x * (width - left - right)

    def sy(value, top_value):
        return top + (1 - value / top_value) * (height - top - bottom)

    def line(key, top_value, colour, dash=""):
        points = " ".join(f"{sx(h['epoch']):.1f},{sy(h[key], top_value):.1f}"
                          for h in history if math.isfinite(h[key]))
        return (f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'{dash} points="{points}"/>')

    ticks = []
    for i in range(5):
        value = hi * i / 4
        y = sy(value, hi)
        ticks.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#ddd"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{value:.2f}</text><text x="{width - right + 6}" y="{y + 4:.1f}">'
                     f'{i / 4:.2f}</text>')
    step = max(1, len(epochs) // 10)
    for epoch in epochs[::step]:
        ticks.append(f'<text x="{sx(epoch):.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="middle">{epoch}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11" role="img" aria-label="learning curves">'
        + "".join(ticks)
        + f'<rect x="{left}" y="{top}" width="{width - left - right}" '
          f'height="{height - top - bottom}" fill="none" stroke="#888"/>'
        + line("train_loss", hi, "#1f78b4") + line("val_loss", hi, "#e31a1c")
        + line("val_accuracy", 1.0, "#33a02c", 'stroke-dasharray="5,3"')
        + f'<text x="{(width) / 2}" y="{height - 4}" text-anchor="middle">epoch</text>'
        + f'<text x="12" y="{top + 8}">loss</text>'
        + f'<text x="{width - 50}" y="{top + 8}">accuracy</text></svg>'
        + '<p class="legend"><span style="color:#1f78b4">━ training loss</span> '
          '<span style="color:#e31a1c">━ validation loss</span> '
          '<span style="color:#33a02c">╌ validation accuracy</span></p>')


def _table(header: list, rows: list) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_training_report(summary: dict) -> str:
    """Returns the report as one HTML document."""
    metrics = summary["validation"]
    classes = [c["name"] for c in summary["classes"]]
    unit = "pixels" if summary["task"] == "segmentation" else "patches"
    samples = summary["samples"]
    matrix = metrics["confusion_matrix"]
    matrix_rows = [[f"<b>{html.escape(classes[i])}</b>"] + [str(v) for v in row] + [str(sum(row))]
                   for i, row in enumerate(matrix)]
    matrix_rows.append(["<b>reference total</b>"] + [str(sum(r[j] for r in matrix))
                                                     for j in range(len(classes))]
                       + [str(metrics["count"])])
    per_class = [[html.escape(p["class"]), str(p["reference"]), _number(p["precision"]),
                  _number(p["recall"]), _number(p["f1"]), _number(p["iou"]),
                  str(samples["training_labels"][i]), str(samples["validation_labels"][i]),
                  _number(summary["class_weights"][i], 2)]
                 for i, p in enumerate(metrics["per_class"])]
    groups = [[html.escape(g["group"]), str(g["samples"]), _number(g["accuracy"])]
              for g in metrics["groups"]]
    settings = [[html.escape(str(k)), html.escape(str(v))]
                for k, v in sorted(summary["settings"].items())]
    norm = summary["normalisation"]
    bands = [[html.escape(b), _number(norm["clip_min"][i], 4), _number(norm["clip_max"][i], 4),
              _number(norm["mean"][i], 4), _number(norm["std"][i], 4)]
             for i, b in enumerate(summary["bands"])]
    task = summary["task"].replace("_", " ")
    inputs = ", ".join(samples["inputs"])
    matrix_header = ["predicted \u2193 / reference \u2192"] + classes + ["predicted total"]
    absent = summary.get("absent_from_validation") or []
    warning = (f'<p class="warn">Absent from the validation part (no figures): '
               f'{html.escape(", ".join(absent))}.</p>' if absent else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CNN training report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #bbb;padding:3px 8px;
text-align:right}}th{{background:#eee}}td:first-child{{text-align:left}}.warn{{color:#a00}}
.legend span{{margin-right:1.5em}}</style></head><body>
<h1>CNN training report</h1>
<p>{html.escape(summary["architecture_label"])} for {html.escape(task)},
{summary["parameters"]:,} parameters, trained on {html.escape(summary["device"].upper())} with
PyTorch {html.escape(summary["torch_version"])}. Training took {summary["training_seconds"]:.1f} s
({summary["samples_per_second"]:.1f} samples/s); best epoch {summary["best_epoch"]} of
{len(summary["history"])}{" (stopped early)" if summary["stopped_early"] else ""}.
ONNX export checked against the network: probabilities differ by at most
{summary.get("export_max_difference", float("nan")):.2g}.</p>
<h2>Data</h2>
<p>{samples["total"]} samples of {samples["patch_size"]} × {samples["patch_size"]} px:
{samples["training"]} for training, {samples["validation"]} held out for validation as whole
{"inputs or patches" if summary["settings"].get("validation") == "inputs" else "spatial blocks"}
({len(samples["validation_groups"])} groups). Inputs: {html.escape(inputs)}.</p>
<h2>Learning curves</h2>
{learning_curves_svg(summary["history"])}
<h2>Validation (held-out groups)</h2>
<p>Overall accuracy {_number(metrics["overall_accuracy"])}, kappa {_number(metrics["kappa"])},
macro F1 {_number(metrics["macro_f1"])} over {metrics["count"]} {unit}. Accuracy per held-out
group: mean {_number(metrics["group_accuracy_mean"])}, min {_number(metrics["group_accuracy_min"])},
max {_number(metrics["group_accuracy_max"])} ({len(metrics["groups"])} groups).</p>
{warning}
{_table(["class", f"reference {unit}", "precision (UA)", "recall (PA)", "F1", "IoU",
         f"training {unit}", f"validation {unit}", "loss weight"], per_class)}
<h3>Confusion matrix (rows = predicted, columns = reference)</h3>
{_table(matrix_header, matrix_rows)}
<h3>Accuracy per held-out group</h3>
{_table(["group", "samples", "accuracy"], groups)}
<h2>Normalisation (from the training part, stored in the model)</h2>
{_table(["band", "clip min", "clip max", "mean", "std"], bands)}
<h2>Settings</h2>
{_table(["setting", "value"], settings)}
</body></html>
"""


def write_training_report(path: str, summary: dict) -> None:
    """Writes the report of a training run (see :func:`render_training_report`)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render_training_report(summary))
