"""The HTML report of a ``traincnn`` run, built with the shared report writer (core/io/reports)."""

from __future__ import annotations

from ..io.reports import HtmlReport, fmt_value, heatmap, line_chart, swatch, write_text


def render_training_report(summary: dict) -> str:
    """Returns the report of a training run as one self-contained HTML page."""
    unit = "pixels" if summary["task"] == "segmentation" else "patches"
    page = HtmlReport("CNN training report")
    _run_section(page, summary)
    _data_section(page, summary)
    _learning_curves(page, summary, unit)
    _validation_section(page, summary, unit)
    _normalisation_and_settings(page, summary)
    return page.render()


def _run_section(page: HtmlReport, summary: dict) -> None:
    """The network, the data it saw, the time it took and the export check."""
    page.meta([
        ("Network", f"{summary['architecture_label']}, {summary['parameters']:,} parameters"),
        ("Task", summary["task"].replace("_", " ")),
        ("Bands", ", ".join(summary["bands"])),
        ("Trained on", f"{summary['device'].upper()}, PyTorch {summary['torch_version']}"),
        ("Training time", f"{summary['training_seconds']:.1f} s "
                          f"({summary['samples_per_second']:.1f} samples/s)"),
        ("Kept epoch", f"{summary['best_epoch']} of {len(summary['history'])}"
                       + (" (stopped early)" if summary["stopped_early"] else "")),
        ("ONNX check", f"probabilities within {summary.get('export_max_difference', 0):.2g} "
                       "of the trained network"),
        ("Inputs", ", ".join(summary["samples"]["inputs"])),
    ])


def _data_section(page: HtmlReport, summary: dict) -> None:
    """How many samples were trained on and which groups were held out."""
    samples = summary["samples"]
    held = "inputs or patches" if summary["settings"].get("validation") == "inputs" else \
        "spatial blocks"
    page.heading("Data")
    page.paragraph(
        f"{samples['total']} samples of {samples['patch_size']} × {samples['patch_size']} px: "
        f"{samples['training']} for training, {samples['validation']} held out for validation "
        f"as whole {held} ({len(samples['validation_groups'])} group(s): "
        f"{', '.join(samples['validation_groups'][:12])}"
        f"{' …' if len(samples['validation_groups']) > 12 else ''}).")


def _learning_curves(page: HtmlReport, summary: dict, unit: str) -> None:
    """Loss and validation accuracy per epoch."""
    page.heading("Learning curves")
    epochs = [str(h["epoch"]) for h in summary["history"]]
    page.figure(line_chart(epochs, {
        "training loss": [h["train_loss"] for h in summary["history"]],
        "validation loss": [h["val_loss"] for h in summary["history"]]},
        "Loss per epoch", y_label="cross-entropy"),
        "Class-weighted cross-entropy; x axis: epoch.")
    page.figure(line_chart(epochs, {
        "validation accuracy": [h["val_accuracy"] for h in summary["history"]]},
        "Validation accuracy per epoch", y_label="overall accuracy"),
        f"Share of held-out {unit} classified correctly; x axis: epoch.")


def _validation_section(page: HtmlReport, summary: dict, unit: str) -> None:
    """Overall and grouped figures, per-class table, confusion matrix, accuracy per group."""
    metrics = summary["validation"]
    samples = summary["samples"]
    classes = [c["name"] for c in summary["classes"]]
    page.heading("Validation on the held-out part")
    page.paragraph(
        f"Overall accuracy {fmt_value(metrics['overall_accuracy'])}, kappa "
        f"{fmt_value(metrics['kappa'])}, macro F1 {fmt_value(metrics['macro_f1'])} over "
        f"{metrics['count']} {unit}. Accuracy per held-out group (the grouped figure): mean "
        f"{fmt_value(metrics['group_accuracy_mean'])}, min "
        f"{fmt_value(metrics['group_accuracy_min'])}, max "
        f"{fmt_value(metrics['group_accuracy_max'])} over {len(metrics['groups'])} group(s).")
    absent = summary.get("absent_from_validation") or []
    page.notes([f"Absent from the validation part (no figures): {', '.join(absent)}."]
               if absent else [])
    page.table(
        ["class", f"reference {unit}", "precision (UA)", "recall (PA)", "F1", "IoU",
         f"training {unit}", f"validation {unit}", "loss weight"],
        [[swatch(p["class"], summary["classes"][i]["color"]), p["reference"],
          fmt_value(p["precision"]), fmt_value(p["recall"]), fmt_value(p["f1"]),
          fmt_value(p["iou"]), samples["training_labels"][i], samples["validation_labels"][i],
          fmt_value(summary["class_weights"][i], 2)]
         for i, p in enumerate(metrics["per_class"])], caption="Per class")
    matrix = metrics["confusion_matrix"]
    page.table(
        ["predicted \\ reference"] + classes + ["predicted total"],
        [[classes[i]] + list(row) + [sum(row)] for i, row in enumerate(matrix)],
        caption="Confusion matrix (rows = predicted, columns = reference; column totals are the "
                "reference counts above)", diagonal_from=1)
    page.figure(heatmap(classes, classes, matrix, "predicted", "reference"),
                "Rows = predicted, columns = reference; each row shaded by its share of the row "
                "total (diagonal blue: agreement, red: confusion).")
    page.table(["group", "samples", "accuracy"],
               [[g["group"], g["samples"], fmt_value(g["accuracy"])] for g in metrics["groups"]],
               caption="Accuracy per held-out group")


def _normalisation_and_settings(page: HtmlReport, summary: dict) -> None:
    """The normalisation stored in the model, and every setting of the run."""
    norm = summary["normalisation"]
    page.heading("Normalisation (from the training part, stored in the model)")
    page.table(["band", "clip min", "clip max", "mean", "std"],
               [[b, fmt_value(norm["clip_min"][i], 4), fmt_value(norm["clip_max"][i], 4),
                 fmt_value(norm["mean"][i], 4), fmt_value(norm["std"][i], 4)]
                for i, b in enumerate(summary["bands"])])
    page.heading("Settings")
    page.table(["setting", "value"],
               [[k, str(v)] for k, v in sorted(summary["settings"].items())])


def write_training_report(path: str, summary: dict) -> None:
    """Writes the report of a training run atomically (see :func:`render_training_report`)."""
    write_text(path, render_training_report(summary), "Training report")
