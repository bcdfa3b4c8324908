#!/usr/bin/env python3
"""Stores the per-band training statistics in the bundled water model's card, without retraining.

resources/models/s1_water_unet.onnx was trained before LandFusion stored band statistics in model
cards (format 1, upgraded to format 2), so ``cnnclassify`` had no training range to compare an
input with. This script recomputes them exactly as ``landfusion:traincnn`` does at training:

1. the training run recorded in the model (its settings: the Sen1Floods11 chips and labels, tile
   size, seed, validation by whole inputs) is read again with traincnn's own sample reader and
   validation split, so the same chips are held out (Ghana_97059, Pakistan_849790, USA_905409)
   and the other 7 are the training part;
2. the normalisation recomputed from that training part must equal the one stored in the model
   (clip range, means, standard deviations): proof that these are the model's training pixels;
3. the band statistics are those traincnn's card builder computes from the training part;
4. the card is rewritten with them; the graph and weights stay byte-identical and the model gives
   identical outputs on a chip (both checked before the file is replaced).

  .venv/bin/python scripts/water_model_statistics.py          # rewrite the bundled model
  .venv/bin/python scripts/water_model_statistics.py --check  # only compare, change nothing

Needs ../shared/data (see its README). Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
MODEL = os.path.join(ROOT, "resources", "models", "s1_water_unet.onnx")
#: Where the statistics come from, stored in the card (``extra``).
SOURCE_NOTE = ("recomputed after training by scripts/water_model_statistics.py with traincnn's "
               "sample reader, validation split and card builder, from the {count} training "
               "chips {chips}; the normalisation of the model was reproduced from them")


def import_landfusion():
    """Makes the plugin importable as ``landfusion`` (the repository root is the plugin)."""
    sys.path.insert(0, ROOT)
    from plugin_import import make_importable

    make_importable()


def training_options(card, data: str = DATA):
    """The traincnn options of the recorded training run, with its chips found under ``data``."""
    from landfusion.core.cnn.training_options import TrainingOptions
    from landfusion.core.errors import InputError

    recorded = card.extra.get("model_card") or card.training.get("settings")
    settings = json.loads(recorded)["settings"] if isinstance(recorded, str) else recorded
    if not settings or not settings.get("inputs"):
        raise InputError(f"{card.label} does not record the inputs it was trained on.")

    def local(path):  # .../<folder>/<file> recorded at training -> data/<folder>/<file>
        return os.path.join(data, os.path.basename(os.path.dirname(path)), os.path.basename(path))

    settings = dict(settings, inputs=[local(p) for p in settings["inputs"]],
                    labels=[local(p) for p in settings["labels"]], output_report=None,
                    output_model=os.path.join(tempfile.gettempdir(), "unused.onnx"))
    missing = [p for p in settings["inputs"] + settings["labels"] if not os.path.isfile(p)]
    if missing:
        raise InputError(f"The training chips are missing: {', '.join(missing)} (see "
                         f"{os.path.join(data, 'README.md')}).")
    options = TrainingOptions(**settings)
    options.clean_lists()
    return options


def training_statistics(card, data: str = DATA, log=print) -> dict:
    """Recomputes what traincnn computed from the model's training part.

    Returns:
        ``{"band_stats", "normalisation", "training_chips", "held_out_chips"}``.

    Raises:
        ModelError: the recomputed normalisation differs from the model's (other pixels).
    """
    from landfusion.core.cnn.trained_model import build_metadata
    from landfusion.core.cnn.training import check_training_inputs, plan_training
    from landfusion.core.errors import ModelError

    options = training_options(card, data)
    arch = check_training_inputs(options)["architecture"]
    plan = plan_training(options, arch, log=log, warn=log)
    rebuilt = build_metadata(plan.samples, plan.stats, options, arch, {}, ~plan.val_mask)
    normalisation = {key: (getattr(rebuilt, key), getattr(card, key))
                     for key in ("clip_min", "clip_max", "input_mean", "input_std")}
    differing = {k: v for k, v in normalisation.items() if not np.allclose(*v, rtol=1e-5)}
    if differing or rebuilt.bands != card.bands:
        raise ModelError(f"The recomputed normalisation {differing} (bands {rebuilt.bands}) is "
                         f"not the one of {card.label}: these are not its training pixels.")

    def chips(mask):
        return sorted({g.replace("_S1Hand.tif", "") for g in plan.samples.groups[mask]})

    return {"band_stats": rebuilt.band_stats, "normalisation": normalisation,
            "training_chips": chips(~plan.val_mask), "held_out_chips": chips(plan.val_mask)}


def graph_bytes(path: str) -> bytes:
    """The serialised graph (nodes and weights) of an ONNX file."""
    import onnx

    return onnx.load_model(path).graph.SerializeToString()


def same_outputs(a: str, b: str, chip: str) -> bool:
    """Whether two models give identical raw outputs on a 256 px tile of a chip (dB VV/VH),
    normalised as the models' cards say."""
    import onnxruntime as ort
    import rasterio

    from landfusion.core.cnn.batches import Normaliser
    from landfusion.core.models.reading import read_model

    with rasterio.open(chip) as src:
        tile = src.read(window=((0, 256), (0, 256))).astype("float32")
    outputs = []
    for path in (a, b):
        x, _ = Normaliser(read_model(path), [None] * tile.shape[0])(tile.copy())
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: x[None]})[0])
    return outputs[0].shape == outputs[1].shape and np.array_equal(*outputs)


def rewrite(model: str = MODEL, data: str = DATA, check_only: bool = False, log=print) -> bool:
    """Stores the recomputed statistics in ``model``'s card; returns whether it changed."""
    from landfusion.core.errors import ModelError
    from landfusion.core.models.reading import read_model
    from landfusion.core.models.writing import write_model

    card = read_model(model)
    found = training_statistics(card, data, log)
    log(f"training chips: {', '.join(found['training_chips'])}; held out: "
        f"{', '.join(found['held_out_chips'])}")
    for name, stats in zip(card.bands, found["band_stats"]):
        log(f"{name}: " + ", ".join(f"{k} {v:.6g}" for k, v in stats.items()))
    note = SOURCE_NOTE.format(count=len(found["training_chips"]),
                              chips=", ".join(found["training_chips"]))
    if card.band_stats == found["band_stats"] and card.extra.get("band_stats_source") == note:
        log(f"{os.path.basename(model)} already holds these statistics")
        return False
    if check_only:
        log(f"{os.path.basename(model)} lacks these statistics (run without --check)")
        return True
    card.band_stats = found["band_stats"]
    card.extra["band_stats_source"] = note
    folder = os.path.dirname(os.path.abspath(model))
    handle, temp = tempfile.mkstemp(prefix=".landfusion-stats-", suffix=".onnx", dir=folder)
    os.close(handle)
    try:
        write_model(model, card, temp)
        chip = training_options(card, data).inputs[0]
        if graph_bytes(temp) != graph_bytes(model) or not same_outputs(model, temp, chip):
            raise ModelError("Rewriting the card changed the network; the model was kept.")
        os.replace(temp, model)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    log(f"wrote {model}: band statistics in the card, graph and weights unchanged")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=MODEL, help="the model (default: the bundled one)")
    parser.add_argument("--data", default=DATA, help="the shared data folder")
    parser.add_argument("--check", action="store_true",
                        help="exit with 1 when the model lacks the statistics; change nothing")
    args = parser.parse_args(argv)
    import_landfusion()
    changed = rewrite(args.model, args.data, check_only=args.check)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
