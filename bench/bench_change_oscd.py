"""Change model accuracy on OSCD: leave one city out, per feature set (prints a Markdown table).

Builds both dates of the five labelled OSCD cities with the co-registration engine onto the label
grid (10 bands B02-B12 without B09/B10, NDVI, NDBI; cached in bench/data/oscd), then trains the
change model once per configuration with leave-one-city-out validation and reports, per held-out
city, the F1 / precision / recall of change at the threshold chosen on the OTHER cities, the F1
at 0.5, and the pooled figures beside the pixel-level (optimistic) figure.

Usage: python bench/bench_change_oscd.py [groups|windows ...]   e.g. "dates,diff|" "diff_z|5,15"
"""

import glob
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / ".qgis" / "plugins"))
OSCD = ROOT.parent / "shared" / "data" / "oscd"
CACHE = HERE / "data" / "oscd"
CITIES = ("paris", "rennes", "bordeaux", "aguasclaras", "nantes")
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
DEFAULT_CONFIGS = ("dates,diff|", "dates,diff,logratio|", "dates,diff,logratio,context|5,15",
                   "dates,diff,logratio,context,diff_z|5,15", "dates,diff_z|5,15")


def label(city):
    return str(OSCD / "labels" / city / f"{city}-cm_georef.tif")


def stacks():
    from landfusion.core.stack.coregister import coregister_stack

    CACHE.mkdir(parents=True, exist_ok=True)
    pairs = []
    for city in CITIES:
        pair = []
        for date in (1, 2):
            out = CACHE / f"{city}_{date}.tif"
            if not out.exists():
                files = sorted(glob.glob(str(OSCD / "images" / city / f"imgs_{date}" / "*.tif")))
                coregister_stack(str(out), s2=files, s2_bands=BANDS, indices=("NDVI", "NDBI"),
                                 reference=label(city))
            pair.append(str(out))
        pairs.append(pair)
    return pairs


def run(config, pairs, algorithm="random_forest", samples=4000):
    from landfusion.core.change.training import train_change_model

    groups, _, windows = config.partition("|")
    started = time.time()
    result = train_change_model(
        [p[0] for p in pairs], [p[1] for p in pairs], str(CACHE / "bench_model.onnx"),
        labels=[label(c) for c in CITIES], algorithm=algorithm,
        parameters={"n_estimators": 60, "min_samples_leaf": 3}, feature_groups=groups.split(","),
        scales=[int(w) for w in windows.split(",") if w], samples_per_pair=samples,
        pixel_folds=3, threads=2)
    return result, time.time() - started


def main():
    configs = sys.argv[1:] or DEFAULT_CONFIGS
    pairs = stacks()
    print("| features | windows | " + " | ".join(CITIES) + " | mean F1 | pooled F1 (P / R) "
          "| pooled F1 at 0.5 | pixel-level F1 | threshold | s |")
    print("|---" * (len(CITIES) + 8) + "|")
    for config in configs:
        result, seconds = run(config, pairs)
        v = result["validation"]
        cells = []
        for entry in v["per_pair"]:
            s = entry["at_threshold_from_others"]
            cells.append(f"{s['f1']:.3f} ({s['precision']:.2f} / {s['recall']:.2f})")
        pooled = v["pooled"]
        groups, _, windows = config.partition("|")
        print(f"| {groups} | {windows or '-'} | " + " | ".join(cells) +
              f" | {v['mean_pair_f1_threshold_from_others']:.3f} | {pooled['f1']:.3f} "
              f"({pooled['precision']:.2f} / {pooled['recall']:.2f}) | "
              f"{v['pooled_at_0_5']['f1']:.3f} | {result['pixel_validation']['f1']:.3f} | "
              f"{v['threshold']:.2f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
