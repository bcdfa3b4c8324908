"""Trains the S1+S2 land-cover U-Net on the TerraMind example chips and compares it with a pixel
Random Forest trained on the same chips and features.

Data: ../shared/data/terramind: S1RTC (VV, VH dB), S2L2A (12 bands, reflectance x 10000) and
LULC (reference classes) on identical 224 x 224 grids. One chip is held out for the comparison.
The ONNX model is written to resources/models only when the U-Net matches or beats the Random
Forest on the held-out chip (overall accuracy and macro F1 each no more than one point below) and
is useful at all (overall accuracy of at least MIN_ACCURACY); the numbers are written either way
(``s1s2_landcover_unet.metrics.json``).

Run through scripts/train_models.sh (seeded; a few minutes on two CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import rasterio
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score

from unet import DATA, ROOT, SmallUNet, export_onnx, import_landfusion, random_crops, seed_everything

CHIPS = ("282D_485L_3_3", "433D_629L_3_1", "637U_59R_1_3")
HELD_OUT = "637U_59R_1_3"
S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
BANDS = ["VV", "VH"] + S2_BANDS
#: Reference classes of the chips (0 is nodata); a class absent from the training chips is dropped.
CLASS_TABLE = {1: ("water", "#1f78b4"), 2: ("trees", "#33a02c"), 3: ("flooded vegetation", "#6fc6b6"),
               4: ("crops", "#ffd92f"), 5: ("built area", "#e31a1c"), 6: ("bare ground", "#a6761d"),
               7: ("snow and ice", "#e0f3f8"), 8: ("clouds", "#bdbdbd"), 9: ("rangeland", "#c7e9a0")}
CLIP_MIN = [-35.0, -42.0] + [0.0] * len(S2_BANDS)
CLIP_MAX = [5.0, -5.0] + [1.0] * len(S2_BANDS)
SCALE = [1.0, 1.0] + [1e-4] * len(S2_BANDS)
IGNORE = -1
SEED = 20240612
MODEL_NAME = "s1s2_landcover_unet"
#: Below this held-out overall accuracy a model is not shipped, even when it beats the forest.
MIN_ACCURACY = 0.5


def load_chip(chip):
    """Returns (physical values (14, H, W) float32: dB and reflectance, reference (H, W))."""
    with rasterio.open(os.path.join(DATA, "terramind", "S1RTC", chip + ".tif")) as src:
        s1 = src.read().astype("float32")
    with rasterio.open(os.path.join(DATA, "terramind", "S2L2A", chip + ".tif")) as src:
        s2 = src.read().astype("float32")
    with rasterio.open(os.path.join(DATA, "terramind", "LULC", chip + ".tif")) as src:
        label = src.read(1).astype("int64")
    x = np.concatenate([s1, s2]) * np.array(SCALE, "float32")[:, None, None]
    x = np.clip(x, np.array(CLIP_MIN, "float32")[:, None, None],
                np.array(CLIP_MAX, "float32")[:, None, None])
    return x, label


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default=os.path.join(ROOT, "resources", "models"))
    args = parser.parse_args()
    seed_everything(SEED)
    torch.set_num_threads(2)
    chips = {c: load_chip(c) for c in CHIPS}
    train = [c for c in CHIPS if c != HELD_OUT]
    values = sorted({int(v) for c in train for v in np.unique(chips[c][1]) if v != 0})
    index = {v: i for i, v in enumerate(values)}
    print(f"training chips {train}, held out {HELD_OUT}; classes {values}")

    def encode(label):
        out = np.full(label.shape, IGNORE, "int64")
        for v, i in index.items():
            out[label == v] = i
        return out

    pixels = np.concatenate([chips[c][0].reshape(len(BANDS), -1).T for c in train])
    mean = [round(float(v), 5) for v in pixels.mean(axis=0)]
    std = [round(float(max(v, 1e-3)), 5) for v in pixels.std(axis=0)]
    m, s = np.array(mean, "float32")[:, None, None], np.array(std, "float32")[:, None, None]
    images = [(chips[c][0] - m) / s for c in train]
    labels = [encode(chips[c][1]) for c in train]

    started = time.time()
    model = SmallUNet(len(BANDS), len(values), width=12, depth=3, dropout=0.2)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=args.steps)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    rng = np.random.default_rng(SEED)
    model.train()
    for step in range(args.steps):
        x, y = random_crops(images, labels, 64, 8, rng, IGNORE)
        x = x + 0.05 * torch.randn_like(x)  # mild noise: two chips are very little data
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.4f} ({time.time() - started:.0f} s)", flush=True)
    model.eval()

    test_x, test_label = chips[HELD_OUT]
    keep = test_label != 0
    with torch.no_grad():
        scores = model(torch.from_numpy(((test_x - m) / s)[None]))[0].numpy()
    unet_pred = np.array(values)[scores.argmax(0)]

    forest = RandomForestClassifier(n_estimators=200, min_samples_leaf=2, n_jobs=2,
                                    random_state=SEED)
    train_y = np.concatenate([chips[c][1].ravel() for c in train])
    labelled = train_y != 0
    forest.fit(pixels[labelled], train_y[labelled])
    rf_pred = forest.predict(test_x.reshape(len(BANDS), -1).T).reshape(test_label.shape)

    truth = test_label[keep]
    present = sorted(int(v) for v in np.unique(truth))

    def report(pred):
        p = pred[keep]
        return {"overall_accuracy": float(accuracy_score(truth, p)),
                "macro_f1": float(f1_score(truth, p, labels=present, average="macro",
                                           zero_division=0)),
                "f1_per_class": {CLASS_TABLE[v][0]: float(f) for v, f in zip(
                    present, f1_score(truth, p, labels=present, average=None, zero_division=0))}}

    results = {"held_out": HELD_OUT, "classes": values, "held_out_classes": present,
               "unet": report(unet_pred), "random_forest": report(rf_pred),
               "training_seconds": round(time.time() - started, 1)}
    ship = (results["unet"]["overall_accuracy"] >= results["random_forest"]["overall_accuracy"] - 0.01
            and results["unet"]["macro_f1"] >= results["random_forest"]["macro_f1"] - 0.01)
    results["beats_random_forest"] = bool(ship)
    ship = ship and results["unet"]["overall_accuracy"] >= MIN_ACCURACY
    results["minimum_accuracy"] = MIN_ACCURACY
    results["shipped"] = bool(ship)
    print(json.dumps(results, indent=1))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, MODEL_NAME + ".metrics.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    path = os.path.join(args.out, MODEL_NAME + ".onnx")
    if not ship:
        if os.path.exists(path):
            os.remove(path)
        print("Not shipped: the U-Net does not match the Random Forest on the held-out chip, or "
              f"its overall accuracy is below {MIN_ACCURACY}.")
        return

    import_landfusion()
    from landfusion.core.models.format import build_card, parse_classes, write_model

    export_onnx(model, len(BANDS), path)
    metadata = build_card(
        task="segmentation", bands=BANDS, band_units=["dB", "dB"] + ["DN"] * (len(BANDS) - 2),
        classes=parse_classes([{"value": v, "name": CLASS_TABLE[v][0], "color": CLASS_TABLE[v][1]}
                               for v in values]),
        input_offset=[0.0] * len(BANDS), input_scale=SCALE, clip_min=CLIP_MIN, clip_max=CLIP_MAX,
        input_mean=mean, input_std=std, nodata_values=[], nodata_fill=0.0, output_type="logits",
        tile_size=224, tile_overlap=48, size_divisor=8, pixel_size=10.0,
        name="Sentinel-1/2 land cover (U-Net)",
        description="Land cover from S1 VV/VH (dB) and S2 L2A reflectance x 10000 (12 bands).",
        version="1.0", license="Apache-2.0 (training chips: TerraMind examples)",
        author="LandFusion")
    write_model(path, metadata)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
