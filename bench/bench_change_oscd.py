"""Change model accuracy on OSCD: leave one city out, per feature set, over several seeds.

Builds both dates of the five labelled OSCD cities with the co-registration engine onto the label
grid (10 bands B02-B12 without B09/B10, NDVI, NDBI; cached in bench/data/oscd), then trains the
change model per configuration with leave-one-city-out validation and reports, per held-out
city, the F1 of change at the threshold chosen on the OTHER cities, the mean over cities, the
pooled F1 (precision / recall), the pooled F1 at 0.5 and the pixel-level (optimistic) figure.

The seed drives the samples drawn per city and the forest, so one run is one draw: each
configuration is trained with three seeds (``--seeds 0,1,2``) and every figure is given as the
median over the seeds with its range (min-max). The load average is printed before and after; it
changes the seconds, not the scores (training uses 2 threads).

Usage: python bench/bench_change_oscd.py [--seeds 0,1,2] [groups|windows ...]
       e.g. "dates,diff|" "dates,diff_z|5,15"; default: the engine's default feature set.
"""

import argparse
import glob
import statistics
import sys
import time

import common

OSCD = common.ROOT.parent / "shared" / "data" / "oscd"
CACHE = common.DATA / "oscd"
CITIES = ("paris", "rennes", "bordeaux", "aguasclaras", "nantes")
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
DEFAULT_CONFIGS = ("dates,diff,logratio,context,diff_z|5,15",)


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


def run(config, pairs, seed, algorithm="random_forest", samples=4000):
    from landfusion.core.change.training import train_change_model

    groups, _, windows = config.partition("|")
    started = time.time()
    result = train_change_model(
        [p[0] for p in pairs], [p[1] for p in pairs], str(CACHE / "bench_model.onnx"),
        labels=[label(c) for c in CITIES], algorithm=algorithm,
        parameters={"n_estimators": 60, "min_samples_leaf": 3}, feature_groups=groups.split(","),
        scales=[int(w) for w in windows.split(",") if w], samples_per_pair=samples,
        pixel_folds=3, threads=2, seed=seed)
    return result, time.time() - started


def scores(result):
    """The figures of one training run, by column."""
    v = result["validation"]
    row = {city: entry["at_threshold_from_others"]["f1"]
           for city, entry in zip(CITIES, v["per_pair"])}
    row.update({"mean F1": v["mean_pair_f1_threshold_from_others"],
                "pooled F1": v["pooled"]["f1"], "pooled P": v["pooled"]["precision"],
                "pooled R": v["pooled"]["recall"], "pooled F1 at 0.5": v["pooled_at_0_5"]["f1"],
                "pixel-level F1": result["pixel_validation"]["f1"], "threshold": v["threshold"]})
    return row


def spread(values, digits=3):
    """'median (min-max)' of the values."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=lambda text: [int(v) for v in text.split(",")],
                        default=[0, 1, 2], help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS)
    args = parser.parse_args()
    if not OSCD.is_dir():
        print("(OSCD not found under ../shared/data: change benchmark skipped)")
        return 0
    common.import_landfusion()
    pairs = stacks()
    before, started = common.load_average(), time.strftime("%H:%M:%S")
    columns = list(CITIES) + ["mean F1", "pooled F1", "pooled F1 at 0.5", "pixel-level F1"]
    lines = [f"| features | windows | {' | '.join(columns)} | pooled P / R | threshold "
             "| s per seed |",
             "|---" * (len(columns) + 5) + "|"]
    for config in args.configs:
        runs, seconds = [], []
        for seed in args.seeds:
            result, elapsed = run(config, pairs, seed)
            runs.append(scores(result))
            seconds.append(elapsed)
        groups, _, windows = config.partition("|")
        cells = [spread([r[c] for r in runs]) for c in columns]
        lines.append(f"| {groups} | {windows or '-'} | {' | '.join(cells)} | "
                     f"{statistics.median(r['pooled P'] for r in runs):.2f} / "
                     f"{statistics.median(r['pooled R'] for r in runs):.2f} | "
                     f"{spread([r['threshold'] for r in runs], 2)} | {spread(seconds, 0)} |")
    print(f"OSCD, leave one city out: F1 of change at the threshold chosen on the other cities; "
          f"median (range) over seeds {', '.join(map(str, args.seeds))}.\n")
    print(f"Load average (1/5/15 min) before: {before} (at {started}); after: "
          f"{common.load_average()}; {common.CORES} cores.\n")
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
