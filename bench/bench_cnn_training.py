"""CNN training throughput: LandFusion's training loop vs a bare PyTorch loop, same data and model.

Data: labelled 64 px tiles cut by the engine from real Sen1Floods11 chips (../shared/data), or
from a generated VV/VH scene with a thresholded label when that folder is absent.
Ours: ``core.cnn.training_loop.fit`` (seeded shuffling, cancel check and progress per batch, class
weights, validation loss and accuracy per epoch, best-weights bookkeeping, deterministic kernels
on, as ``train_cnn`` runs it).
Baseline: the textbook loop: ``DataLoader(TensorDataset, shuffle=True)``, AdamW, cross-entropy,
one validation pass per epoch.
Same network (same seed), same optimiser settings, same epochs, one thread each, in paired rounds
of alternating order; the median ratio within rounds compares (the machine may be shared).
Target: overhead <= 15 % without augmentation; the augmented row shows what flips/turns cost.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = (ROOT.parent / "shared" / "data").resolve()
EPOCHS = int(os.environ.get("BENCH_TRAIN_EPOCHS", "3"))
ROUNDS = int(os.environ.get("BENCH_TRAIN_ROUNDS", "3"))
PATCH, BATCH, WIDTH = 64, 16, 8


def _import_landfusion():
    sys.path.insert(0, str(ROOT))
    from plugin_import import make_importable

    make_importable()


def _generated_scene(folder: Path) -> list:
    """A smooth VV/VH scene (dB) and its label (water where VV is low), written once."""
    import rasterio
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    image, label = folder / "train_s1.tif", folder / "train_label.tif"
    if not image.exists():
        rng = np.random.default_rng(1)
        coarse = rng.normal(size=(2, 20, 20))
        field = np.kron(coarse, np.ones((32, 32)))[:, :640, :640]
        vv = (-12 + 5 * field[0] + rng.normal(scale=1.5, size=(640, 640))).astype("float32")
        vh = (-19 + 5 * field[1] + rng.normal(scale=1.5, size=(640, 640))).astype("float32")
        profile = {"driver": "GTiff", "width": 640, "height": 640, "crs": "EPSG:32633",
                   "transform": from_origin(400000, 5000000, 10, 10)}
        with rasterio.open(image, "w", count=2, dtype="float32", **profile) as dst:
            dst.write(np.stack([vv, vh]))
            dst.set_band_description(1, "VV")
            dst.set_band_description(2, "VH")
        with rasterio.open(label, "w", count=1, dtype="int16", nodata=-1, **profile) as dst:
            dst.write((vv < -15).astype("int16")[None])
    return [(str(image), str(label))]


def prepare():
    """Tensors (normalised like the engine does), class weights and the data description."""
    import glob

    from landfusion.core.cnn import datasets
    from landfusion.core.cnn.architectures import get_architecture
    from landfusion.core.cnn.raster_chips import segmentation_samples
    from landfusion.core.cnn.trained_model import build_metadata, normalise_samples
    from landfusion.core.cnn.training_options import TrainingOptions

    chips = sorted(glob.glob(str(DATA / "sen1floods11*" / "*_S1Hand.tif")))[:4]
    pairs = [(c, c.replace("_S1Hand.tif", "_LabelHand.tif")) for c in chips]
    source = f"{len(pairs)} Sen1Floods11 chips"
    if not pairs:
        pairs, source = _generated_scene(HERE / "data" / "cnn_training"), "a generated scene"
    samples = segmentation_samples([p[0] for p in pairs], PATCH,
                                   labels=[p[1] for p in pairs], label_nodata=-1,
                                   validation="blocks")
    val = datasets.split_validation(samples, 0.2, 1, "blocks")
    stats = datasets.band_statistics(samples.x[~val], 1)
    options = TrainingOptions(output_model="bench.onnx")
    meta = build_metadata(samples, stats, options, get_architecture("unet", "segmentation"), {})
    x = normalise_samples(samples, meta)
    y = samples.y
    counts = np.bincount(y[~val][y[~val] >= 0], minlength=len(samples.classes))
    weights = datasets.class_weights(np.maximum(counts, 1))
    return (x[~val], y[~val], x[val], y[val], weights,
            f"{int((~val).sum())} training / {int(val.sum())} validation tiles of {PATCH} px "
            f"from {source}")


def engine_run(torch, data, augment: bool) -> float:
    from landfusion.core.cnn.networks import build_network
    from landfusion.core.cnn.training_loop import fit
    from landfusion.core.cnn.training_options import TrainingOptions

    tx, ty, vx, vy, weights = data
    torch.manual_seed(7)
    torch.use_deterministic_algorithms(True)
    network = build_network("unet", "segmentation", tx.shape[1], len(weights), {}, WIDTH)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights), ignore_index=-1)
    options = TrainingOptions(output_model="bench.onnx", epochs=EPOCHS, batch_size=BATCH,
                              learning_rate=1e-3, augment=augment, patience=0, seed=7)
    started = time.perf_counter()
    fit(torch, network, tx, ty, vx, vy, loss_fn, options, torch.device("cpu"))
    seconds = time.perf_counter() - started
    torch.use_deterministic_algorithms(False)
    return EPOCHS * tx.shape[0] / seconds


def bare_run(torch, data) -> float:
    from torch.utils.data import DataLoader, TensorDataset

    from landfusion.core.cnn.networks import build_network

    tx, ty, vx, vy, weights = data
    torch.manual_seed(7)
    network = build_network("unet", "segmentation", tx.shape[1], len(weights), {}, WIDTH)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights), ignore_index=-1)
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = DataLoader(TensorDataset(tx, ty), batch_size=BATCH, shuffle=True)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        network.train()
        for xb, yb in loader:
            optimiser.zero_grad()
            loss = loss_fn(network(xb), yb)
            loss.backward()
            optimiser.step()
        network.eval()
        with torch.no_grad():
            for i in range(0, vx.shape[0], BATCH):
                loss_fn(network(vx[i:i + BATCH]), vy[i:i + BATCH])
    seconds = time.perf_counter() - started
    return EPOCHS * tx.shape[0] / seconds


def main() -> int:
    _import_landfusion()
    import torch

    torch.set_num_threads(1)
    tx, ty, vx, vy, weights, description = prepare()
    data = (torch.from_numpy(tx), torch.from_numpy(ty), torch.from_numpy(vx),
            torch.from_numpy(vy), weights)
    rows = {"bare": [], "engine": [], "engine_augment": []}
    ratios = []
    for r in range(ROUNDS):
        order = ["bare", "engine"] if r % 2 == 0 else ["engine", "bare"]
        for name in order:
            rows[name].append(bare_run(torch, data) if name == "bare" else
                              engine_run(torch, data, augment=False))
        ratios.append(rows["bare"][-1] / rows["engine"][-1])
        rows["engine_augment"].append(engine_run(torch, data, augment=True))
    median = float(np.median(ratios))
    print(f"CNN training throughput: small U-Net (width {WIDTH}), batches of {BATCH}, {EPOCHS} "
          f"epochs, one thread; {description}; {ROUNDS} paired rounds.\n")
    print("| loop | samples/s (median) | time vs bare loop (median of paired rounds) |")
    print("|---|---:|---:|")
    bare = float(np.median(rows["bare"]))
    print(f"| bare PyTorch loop (DataLoader, AdamW, validation pass per epoch) | {bare:.1f} "
          "| 1.00 |")
    print(f"| LandFusion `fit` (no augmentation) | {np.median(rows['engine']):.1f} | "
          f"{median:.2f} |")
    print(f"| LandFusion `fit` with flips/90° turns | {np.median(rows['engine_augment']):.1f} | "
          f"{bare / np.median(rows['engine_augment']):.2f} |")
    overhead = 100 * (median - 1)
    print(f"\nOverhead of the engine's loop: {overhead:+.1f} % (target <= 15 %): "
          f"{'met' if overhead <= 15 else 'NOT met'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
