#!/usr/bin/env python3
"""Trains the bundled CNNs with LandFusion's own training engine (``landfusion:traincnn``) and
writes them, with their metrics, to resources/models/ when they beat their baselines.

  .venv/bin/python scripts/train_models.py water      # Sentinel-1 water U-Net (Sen1Floods11)
  .venv/bin/python scripts/train_models.py eurosat    # EuroSAT patch classifier
  .venv/bin/python scripts/train_models.py            # both (this is `make models`)

water: leave-one-chip-out over every hand-labelled Sen1Floods11 chip in ../shared/data: for each
chip, a U-Net trained on the other chips (run through cnnclassify's tiled inference on the held-out
chip) against a single VV threshold tuned on the other chips, and the best threshold for the
held-out chip itself (oracle). The model trained on all chips is shipped only when the U-Net beats
the tuned threshold on most held-out chips; otherwise the previous model stays and its card says so.

eurosat: 20 % of the patches of every class are set aside as a test set before training; the
ResNet-style patch CNN is compared on them with a Random Forest on per-band patch statistics (mean,
std, 10th and 90th percentile). The CNN is shipped when its test accuracy is higher.

Seeded and run on one CPU thread: a run reproduces the committed numbers.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
OUT = os.path.join(ROOT, "resources", "models")


def import_landfusion():
    """Makes the plugin importable as ``landfusion`` (the repository root is the plugin)."""
    sys.path.insert(0, ROOT)
    from plugin_import import make_importable

    make_importable()


# Fixed-length training (patience 0: no early stopping, the last epoch is kept): early stopping
# on the loss of two or three whole chips picked nearly untrained epochs.
WATER = dict(task="segmentation", architecture="unet", patch_size=64, epochs=8, batch_size=16,
             learning_rate=2e-3, width=8, seed=20240611, validation="inputs",
             validation_fraction=0.15, patience=0, augment=True, label_nodata=-1,
             class_names="0:land:#d9c9a3,1:water:#1f78b4", threads=1,
             model_name="Sentinel-1 water (U-Net)",
             description="Segments open water from Sentinel-1 GRD backscatter VV and VH in dB; "
                         "trained with landfusion:traincnn on the hand-labelled Sen1Floods11 "
                         "chips.")
EUROSAT_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11",
                 "B12", "B8A"]
EUROSAT = dict(task="patch_classification", architecture="resnet", epochs=40, batch_size=16,
               learning_rate=2e-3, width=16, seed=20240613, validation="inputs",
               validation_fraction=0.2, patience=8, augment=True, threads=1,
               input_band_names=EUROSAT_BANDS,
               bands=["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                      "B11", "B12"],
               model_name="EuroSAT land use (patch CNN)",
               description="Classifies 64 x 64 px Sentinel-2 patches (12 bands, DN = reflectance "
                           "x 10000) into the 10 EuroSAT classes; trained with "
                           "landfusion:traincnn.")


def iou(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Water IoU; 1.0 when neither holds water."""
    tp = float(np.sum(truth & predicted))
    union = float(np.sum(truth | predicted))
    return tp / union if union else 1.0


def water_chips() -> dict:
    """The Sen1Floods11 chips with S1 and at least one labelled pixel."""
    import rasterio

    chips = {}
    for s1 in sorted(glob.glob(os.path.join(DATA, "sen1floods11*", "*_S1Hand.tif"))):
        label = s1.replace("_S1Hand.tif", "_LabelHand.tif")
        with rasterio.open(label) as src:
            if not (src.read(1) != -1).any():
                print(f"water: {os.path.basename(label)} has no labelled pixel; not used")
                continue
        chips[os.path.basename(s1)[:-len("_S1Hand.tif")]] = (s1, label)
    if not chips:
        sys.exit(f"train_models: no Sen1Floods11 chips in {DATA}")
    return chips


def read_vv_and_truth(s1: str, label: str) -> tuple:
    import rasterio

    with rasterio.open(s1) as src:
        vv = src.read(1).astype("float32")
    with rasterio.open(label) as src:
        truth = src.read(1)
    keep = (truth != -1) & np.isfinite(vv)
    return vv[keep], truth[keep] == 1, keep


def best_threshold(pairs: list) -> float:
    """The VV threshold (dB) with the best water IoU over the pooled pixels of ``pairs``."""
    vv = np.concatenate([p[0] for p in pairs])
    truth = np.concatenate([p[1] for p in pairs])
    candidates = np.arange(-30.0, -5.0, 0.25)
    scores = [iou(truth, vv < t) for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def train(options: dict, output: str, report: str = None, **inputs) -> dict:
    from landfusion.core.cnn.training import train_cnn
    from landfusion.core.cnn.training_options import TrainingOptions

    settings = dict(options, **inputs)
    return train_cnn(TrainingOptions(output_model=output, output_report=report, **settings),
                     log=lambda m: print("   ", m, flush=True),
                     warn=lambda m: print("    warning:", m, flush=True))


def cnn_water(model: str, s1: str, keep: np.ndarray, folder: str) -> np.ndarray:
    """Water mask of the held-out chip from cnnclassify's tiled inference."""
    import rasterio

    from landfusion.core.cnn.inference import classify_with_cnn

    out = os.path.join(folder, "classes.tif")
    classify_with_cnn(s1, model, out, threads=1)
    with rasterio.open(out) as src:
        classes = src.read(1)
    os.remove(out)
    return classes[keep] == 1


def water(loco: bool = True) -> None:
    chips = water_chips()
    names = sorted(chips)
    print(f"water: {len(names)} chips: {', '.join(names)}", flush=True)
    pixels = {c: read_vv_and_truth(*chips[c]) for c in names}
    results = {"chips": {}, "settings": {k: v for k, v in WATER.items()
                                         if k not in ("description",)}}
    work = tempfile.mkdtemp(prefix="landfusion-models-")
    started = time.time()
    try:
        if loco:
            for held in names:
                others = [c for c in names if c != held]
                print(f"leave out {held}", flush=True)
                model = os.path.join(work, "loco.onnx")
                summary = train(WATER, model, inputs=[chips[c][0] for c in others],
                                labels=[chips[c][1] for c in others])
                vv, truth, keep = pixels[held]
                cnn = cnn_water(model, chips[held][0], keep, work)
                tuned = best_threshold([pixels[c][:2] for c in others])
                oracle = best_threshold([pixels[held][:2]])
                row = {"water_fraction": float(truth.mean()), "cnn_iou": iou(truth, cnn),
                       "vv_threshold_db": tuned, "vv_threshold_iou": iou(truth, vv < tuned),
                       "oracle_threshold_db": oracle, "oracle_iou": iou(truth, vv < oracle),
                       "cnn_false_water": float((cnn & ~truth).mean()),
                       "vv_threshold_false_water": float(((vv < tuned) & ~truth).mean()),
                       "best_epoch": summary["best_epoch"],
                       "training_seconds": summary["training_seconds"]}
                if truth.any():
                    row["cnn_beats_threshold"] = row["cnn_iou"] > row["vv_threshold_iou"]
                else:  # no water: IoU is 1 or 0; compare the share of land called water
                    row["cnn_beats_threshold"] = (row["cnn_false_water"]
                                                  < row["vv_threshold_false_water"])
                results["chips"][held] = row
                print(f"  {held}: U-Net IoU {row['cnn_iou']:.3f}, tuned VV < {tuned} dB "
                      f"{row['vv_threshold_iou']:.3f}, oracle VV < {oracle} dB "
                      f"{row['oracle_iou']:.3f}", flush=True)
                os.remove(model)
            wins = sum(r["cnn_beats_threshold"] for r in results["chips"].values())
            results["cnn_wins"] = int(wins)
            results["chips_evaluated"] = len(names)
            for key in ("cnn_iou", "vv_threshold_iou", "oracle_iou"):
                results[f"median_{key}"] = float(np.median(
                    [r[key] for r in results["chips"].values()]))
            ship = wins > len(names) / 2
        else:
            ship = True
        results["shipped"] = bool(ship)
        final = os.path.join(work, "s1_water_unet.onnx")
        report = os.path.join(work, "s1_water_unet.html")
        print("final model on all chips", flush=True)
        summary = train(WATER, final, report, inputs=[chips[c][0] for c in names],
                        labels=[chips[c][1] for c in names])
        results["final"] = {"validation": summary["headline"],
                            "best_epoch": summary["best_epoch"],
                            "validation_groups": summary["samples"]["validation_groups"],
                            "training_seconds": summary["training_seconds"]}
        results["total_seconds"] = round(time.time() - started, 1)
        if ship:
            shutil.copyfile(final, os.path.join(OUT, "s1_water_unet.onnx"))
        with open(os.path.join(OUT, "s1_water_unet.metrics.json"), "w") as handle:
            json.dump(results, handle, indent=1)
        if loco:
            write_water_card(results)
        print(json.dumps({k: v for k, v in results.items() if k != "chips"}, indent=1))
        print("shipped" if ship else "not shipped: the previous model stays", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


LOCO_HEADING = "## Leave-one-chip-out evaluation"


def loco_section(results: dict) -> str:
    """The card's section with the leave-one-chip-out table (Markdown)."""
    rows = []
    for chip, r in sorted(results["chips"].items()):
        if r["water_fraction"] > 0:
            cnn, thr = f"{r['cnn_iou']:.3f}", f"{r['vv_threshold_iou']:.3f}"
        else:
            cnn = f"no water; {100 * r['cnn_false_water']:.2f} % called water"
            thr = f"{100 * r['vv_threshold_false_water']:.2f} % called water"
        best = "**U-Net**" if r["cnn_beats_threshold"] else "threshold"
        rows.append(f"| {chip} | {100 * r['water_fraction']:.1f} | {cnn} | "
                    f"{thr} (< {r['vv_threshold_db']:g} dB) | {r['oracle_iou']:.3f} "
                    f"(< {r['oracle_threshold_db']:g} dB) | {best} |")
    wet = [r for r in results["chips"].values() if r["water_fraction"] >= 0.01]
    wet_wins = sum(r["cnn_beats_threshold"] for r in wet)
    verdict = ("shipped: the U-Net beats the tuned threshold on most held-out chips"
               if results["shipped"] else
               "**not shipped**: the U-Net does not beat the tuned threshold on most held-out "
               "chips, so the previous model stays")
    return f"""{LOCO_HEADING}

`make models` (`scripts/train_models.py water`) retrains the model with `landfusion:traincnn`'s
engine on every hand-labelled Sen1Floods11 chip with S1 data ({results['chips_evaluated']} chips)
and first evaluates the recipe chip by chip: for each chip, a U-Net trained on the other chips
(settings below) is run through `cnnclassify`'s tiled inference on the held-out chip, against a
single VV threshold tuned for water IoU on the pixels of the other chips, and against the
threshold that is best on the held-out chip itself (oracle, hindsight no real method has). Water
IoU over the chip's labelled pixels; on chips without water, the share of land called water
decides.

| held-out chip | water % | U-Net IoU | VV threshold tuned on the other chips | oracle threshold IoU | better |
|---|---:|---:|---:|---:|---|
{chr(10).join(rows)}

The U-Net is better on {results['cnn_wins']} of {results['chips_evaluated']} held-out chips
(median IoU: U-Net {results['median_cnn_iou']:.3f}, tuned threshold
{results['median_vv_threshold_iou']:.3f}, oracle {results['median_oracle_iou']:.3f}); {verdict}.
On the {len(wet)} chips with at least 1 % water it is better on {wet_wins}; wins on chips with
almost no water can be by tiny margins (see the table).
Settings: U-Net width {results['settings']['width']}, {results['settings']['patch_size']} px
tiles, {results['settings']['epochs']} epochs (fixed: no early stopping, the last epoch is kept), batch
{results['settings']['batch_size']}, learning rate {results['settings']['learning_rate']}, flips and
90° turns, median-frequency class weights, seed {results['settings']['seed']}, one CPU thread;
{results['total_seconds'] / 60:.0f} minutes for the whole evaluation and the final model. Numbers:
`s1_water_unet.metrics.json`.
"""


def write_water_card(results: dict) -> None:
    """Updates the card: a new card when shipped, else the LOCO section replaced or appended."""
    path = os.path.join(OUT, "s1_water_unet.md")
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if LOCO_HEADING in text:
        text = text[:text.index(LOCO_HEADING)].rstrip() + "\n"
    if results["shipped"] or not text:
        final = dict(results["final"])
        final["trained_chips"] = results["chips_evaluated"] - len(final["validation_groups"])
        final["validation_groups"] = ", ".join(
            g.replace("_S1Hand.tif", "") for g in final["validation_groups"])
        text = WATER_CARD.format(**final)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.rstrip() + "\n\n" + loco_section(results))


WATER_CARD = """# Model card: `s1_water_unet` — open water from Sentinel-1 VV/VH

| | |
|---|---|
| task | segmentation, classes 0 land, 1 water |
| input | Sentinel-1 GRD backscatter **VV, VH in dB** (band names `VV`, `VH`), ~10 m pixels |
| preprocessing (in the metadata) | clip to the 0.1th/99.9th percentiles of the training data, standardise with its means/stds; NaN and nodata pixels are masked |
| architecture | U-Net, 3 poolings, batch norm, dynamic tile size (multiple of 8), default tiles 256 px with 64 px overlap |
| training | `landfusion:traincnn` through `make models` (`scripts/train_models.py water`) on {trained_chips} hand-labelled Sen1Floods11 chips, {best_epoch} epochs; the chips {validation_groups} are held out for the training report; {training_seconds:.0f} s on one CPU thread |
| band statistics (in the metadata) | per band min, max, mean, std, 2nd/98th percentile of the training chips, which `cnnclassify` compares with the input before classifying (scaled dB such as centi-dB is refused) |
| licence | model: as LandFusion; training labels: Sen1Floods11, CC BY 4.0 |

Validation of the final model on its held-out chips: {validation}. How well the recipe does on a
chip it has never seen is the leave-one-chip-out table below.

## Limits

- Trained on {trained_chips} chips of about 5 km: a demonstration-quality model, not an
  operational flood product.
- Dark, smooth surfaces (wet soil, tarmac, radar shadow) look like water in C-band SAR.
- Expects terrain-corrected, calibrated backscatter in dB (sigma0 or gamma0) at about 10 m; a
  warning is given for pixel sizes far from 10 m. Speckle-filtered input has not been tested.
- Flooded vegetation and urban flooding (double bounce raises backscatter) are not detected.
- Wind-roughened water can be missed.
"""


def patch_features(x: np.ndarray) -> np.ndarray:
    """Per-band mean, std, 10th and 90th percentile of each patch (n, bands, h, w)."""
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    return np.concatenate([flat.mean(2), flat.std(2), np.percentile(flat, 10, axis=2),
                           np.percentile(flat, 90, axis=2)], axis=1)


def eurosat() -> None:
    import onnxruntime  # noqa: F401  (fail early when missing)
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, f1_score

    from landfusion.core.cnn.patch_folder import folder_samples
    from landfusion.core.cnn.batches import Normaliser
    from landfusion.core.cnn.inference import load_model
    from landfusion.core.cnn.tiling import softmax

    folder = os.path.join(DATA, "eurosat_ms", "train")
    everything = folder_samples(folder, EUROSAT["bands"], EUROSAT_BANDS)
    rng = np.random.default_rng(EUROSAT["seed"])
    test = np.zeros(len(everything.y), dtype=bool)
    for k in range(len(everything.classes)):
        members = np.flatnonzero(everything.y == k)
        test[rng.permutation(members)[:max(1, int(round(0.2 * members.size)))]] = True
    work = tempfile.mkdtemp(prefix="landfusion-models-")
    try:
        train_folder = os.path.join(work, "train")
        for group, is_test in zip(everything.groups, test):
            if not is_test:
                target = os.path.join(train_folder, group)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(os.path.join(folder, group), target)
        model = os.path.join(work, "eurosat_patch_cnn.onnx")
        report = os.path.join(work, "eurosat_patch_cnn.html")
        summary = train(EUROSAT, model, report, patch_folder=train_folder)
        loaded = load_model(model)
        normalise = Normaliser(loaded.metadata, [None] * len(everything.bands))
        x = np.stack([normalise(p.copy())[0] for p in everything.x[test]])
        scores = loaded.session.run(None, {loaded.input_name: x})[0]
        cnn = softmax(scores.astype("float32")).argmax(1)
        truth = everything.y[test]
        forest = RandomForestClassifier(n_estimators=300, random_state=EUROSAT["seed"], n_jobs=1)
        forest.fit(patch_features(everything.x[~test]), everything.y[~test])
        rf = forest.predict(patch_features(everything.x[test]))
        names = [c.name for c in everything.classes]
        results = {
            "test_patches": int(test.sum()), "training_patches": int((~test).sum()),
            "classes": names,
            "cnn": {"accuracy": float(accuracy_score(truth, cnn)),
                    "macro_f1": float(f1_score(truth, cnn, average="macro")),
                    "f1_per_class": dict(zip(names, map(float, f1_score(truth, cnn, average=None,
                                                                        labels=range(len(names))))))},
            "random_forest": {"accuracy": float(accuracy_score(truth, rf)),
                              "macro_f1": float(f1_score(truth, rf, average="macro")),
                              "f1_per_class": dict(zip(names, map(float, f1_score(
                                  truth, rf, average=None, labels=range(len(names))))))},
            "cnn_validation": summary["headline"], "best_epoch": summary["best_epoch"],
            "training_seconds": summary["training_seconds"],
            "settings": {k: v for k, v in EUROSAT.items() if k != "description"},
            "model_bytes": os.path.getsize(model),
        }
        ship = results["cnn"]["accuracy"] > results["random_forest"]["accuracy"]
        results["shipped"] = bool(ship)
        target = os.path.join(OUT, "eurosat_patch_cnn.onnx")
        if ship:
            shutil.copyfile(model, target)
        elif os.path.exists(target):
            os.remove(target)
        with open(os.path.join(OUT, "eurosat_patch_cnn.metrics.json"), "w") as handle:
            json.dump(results, handle, indent=1)
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="water, eurosat (default: both)")
    parser.add_argument("--no-loco", action="store_true",
                        help="water: skip the leave-one-chip-out evaluation (and ship)")
    args = parser.parse_args(argv)
    unknown = set(args.models) - {"water", "eurosat"}
    if unknown:
        parser.error(f"unknown model(s) {', '.join(sorted(unknown))}; use water or eurosat")
    import_landfusion()
    for name in args.models or ["water", "eurosat"]:
        if name == "water":
            water(loco=not args.no_loco)
        else:
            eurosat()
    return 0


if __name__ == "__main__":
    sys.exit(main())
