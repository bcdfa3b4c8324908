"""Trains the bundled Sentinel-1 water segmentation model (VV, VH in dB -> land / water).

Data: the hand-labelled Sen1Floods11 chips in ../shared/data/sen1floods11_s1only and
../shared/data/sen1floods11. Two chips are held out for the model card; a single VV threshold,
tuned on the training chips, is the baseline the network must beat on them.

Run through scripts/train_models.sh (seeded; a few minutes on two CPU cores).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import numpy as np
import rasterio
import torch

from unet import DATA, ROOT, SmallUNet, export_onnx, import_landfusion, random_crops, scores, seed_everything

HELD_OUT = ("USA_905409", "Spain_7370579")
BANDS = ["VV", "VH"]
CLIP_MIN = [-35.0, -42.0]
CLIP_MAX = [5.0, -5.0]
IGNORE = -1
SEED = 20240611
MODEL_NAME = "s1_water_unet"


def load_chips():
    """Returns {chip id: (image (2, H, W) float32 dB with NaN, label (H, W) int64)}."""
    chips = {}
    for s1 in sorted(glob.glob(os.path.join(DATA, "sen1floods11*", "*_S1Hand.tif"))):
        chip = os.path.basename(s1)[: -len("_S1Hand.tif")]
        with rasterio.open(s1) as src:
            image = src.read().astype("float32")
        with rasterio.open(s1.replace("_S1Hand.tif", "_LabelHand.tif")) as src:
            label = src.read(1).astype("int64")
        image[~np.isfinite(image)] = np.nan
        label[np.isnan(image).any(axis=0)] = IGNORE
        chips[chip] = (image, label)
    return chips


def normalise(image, mean, std):
    """Clips dB values, standardises, and puts 0 where data is missing (as the engine does)."""
    lo = np.array(CLIP_MIN, "float32")[:, None, None]
    hi = np.array(CLIP_MAX, "float32")[:, None, None]
    x = (np.clip(image, lo, hi) - np.array(mean, "float32")[:, None, None]) / np.array(
        std, "float32")[:, None, None]
    return np.nan_to_num(x, nan=0.0).astype("float32")


def tune_vv_threshold(chips):
    """Returns the VV threshold (dB) with the best water IoU over the training pixels."""
    vv = np.concatenate([img[0][lab != IGNORE] for img, lab in chips])
    truth = np.concatenate([lab[lab != IGNORE] for _, lab in chips])
    best = (-1.0, None)
    for t in np.arange(-30.0, -5.0, 0.25):
        iou = scores(truth, (vv < t).astype(int))["iou"]
        if iou > best[0]:
            best = (iou, float(t))
    return best[1]


def predict(model, x):
    """Predicts classes for one normalised chip (sizes multiple of 8)."""
    with torch.no_grad():
        return model(torch.from_numpy(x[None])).argmax(1)[0].numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--out", default=os.path.join(ROOT, "resources", "models"))
    args = parser.parse_args()
    seed_everything(SEED)
    torch.set_num_threads(2)
    chips = load_chips()
    train = {k: v for k, v in chips.items() if k not in HELD_OUT}
    test = {k: v for k, v in chips.items() if k in HELD_OUT}
    print(f"training chips: {sorted(train)}; held out: {sorted(test)}")

    valid = np.concatenate([np.clip(img[:, lab != IGNORE].T, CLIP_MIN, CLIP_MAX)
                            for img, lab in train.values()])
    mean = [round(float(v), 4) for v in valid.mean(axis=0)]
    std = [round(float(v), 4) for v in valid.std(axis=0)]
    images = [normalise(img, mean, std) for img, _ in train.values()]
    labels = [lab for _, lab in train.values()]

    model = SmallUNet(len(BANDS), 2, width=12, depth=3)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=args.steps)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    rng = np.random.default_rng(SEED)
    started = time.time()
    model.train()
    for step in range(args.steps):
        x, y = random_crops(images, labels, 96, 8, rng, IGNORE)
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.4f} ({time.time() - started:.0f} s)", flush=True)
    model.eval()

    threshold = tune_vv_threshold(list(train.values()))
    oracle = tune_vv_threshold(list(test.values()))
    results = {"vv_threshold_db": threshold, "vv_threshold_oracle_db": oracle, "chips": {}}
    all_truth, all_cnn, all_thr, all_best = [], [], [], []
    for chip, (image, label) in sorted(test.items()):
        keep = label != IGNORE
        cnn = predict(model, normalise(image, mean, std))
        thr = (image[0] < threshold).astype(int)
        best = (image[0] < oracle).astype(int)
        results["chips"][chip] = {"cnn": scores(label[keep], cnn[keep]),
                                  "vv_threshold": scores(label[keep], thr[keep]),
                                  "vv_threshold_oracle": scores(label[keep], best[keep]),
                                  "water_fraction": float((label[keep] == 1).mean())}
        all_truth.append(label[keep]); all_cnn.append(cnn[keep]); all_thr.append(thr[keep])
        all_best.append(best[keep])
    truth = np.concatenate(all_truth)
    results["pooled"] = {"cnn": scores(truth, np.concatenate(all_cnn)),
                         "vv_threshold": scores(truth, np.concatenate(all_thr)),
                         "vv_threshold_oracle": scores(truth, np.concatenate(all_best))}
    results["training_seconds"] = round(time.time() - started, 1)
    print(json.dumps(results, indent=1))

    import_landfusion()
    from landfusion.core.models.format import build_card, parse_classes, write_model

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, MODEL_NAME + ".onnx")
    export_onnx(model, len(BANDS), path)
    metadata = build_card(
        task="segmentation", bands=BANDS, band_units=["dB", "dB"],
        classes=parse_classes([{"value": 0, "name": "land", "color": "#d9c9a3"},
                               {"value": 1, "name": "water", "color": "#1f78b4"}]),
        clip_min=CLIP_MIN, clip_max=CLIP_MAX, input_offset=[0.0, 0.0], input_scale=[1.0, 1.0],
        input_mean=mean, input_std=std, nodata_values=[], nodata_fill=0.0, output_type="logits",
        tile_size=256, tile_overlap=64, size_divisor=8, pixel_size=10.0,
        name="Sentinel-1 water (U-Net)",
        description="Segments open water from Sentinel-1 GRD backscatter VV and VH in dB.",
        version="1.0", license="CC-BY-4.0 (training labels: Sen1Floods11)", author="LandFusion",
    )
    write_model(path, metadata)
    with open(os.path.join(args.out, MODEL_NAME + ".metrics.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
