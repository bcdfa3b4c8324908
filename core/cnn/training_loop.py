"""The PyTorch side of training: run settings, the training loop with early stopping, and the
out-of-memory message.

The run is deterministic on the CPU for a given seed: torch is seeded, deterministic kernels are
required, batches are drawn in the main thread from a seeded generator.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Iterator

from ..errors import InputError
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                       no_progress)
from .datasets import IGNORE
from .training_options import TrainingOptions


class TrainingMemoryError(InputError):
    """Training ran out of memory."""


@contextlib.contextmanager
def torch_settings(torch, threads: int, seed: int) -> Iterator[None]:
    """Seeds torch and requires deterministic kernels (with ``threads`` threads, 0: torch's
    default) while the block runs; torch's threads and determinism are restored afterwards."""
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    try:
        if threads:
            torch.set_num_threads(int(threads))
        torch.manual_seed(int(seed))
        torch.use_deterministic_algorithms(True)
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])


def choose_device(torch, choice: str):
    """The CPU, or CUDA when it is available and not declined."""
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def augment(torch, x, y, generator, segmentation: bool):
    """Random flips and 90-degree turns, one of the 8 per sample."""
    k = torch.randint(0, 8, (x.shape[0],), generator=generator)
    x = x.clone()
    y = y.clone() if segmentation else y
    for t in range(1, 8):
        chosen = (k == t).nonzero(as_tuple=True)[0]
        if chosen.numel() == 0:
            continue
        xt = torch.rot90(x[chosen], t % 4, dims=(2, 3))
        if t >= 4:
            xt = torch.flip(xt, dims=(3,))
        x[chosen] = xt
        if segmentation:
            yt = torch.rot90(y[chosen], t % 4, dims=(1, 2))
            if t >= 4:
                yt = torch.flip(yt, dims=(2,))
            y[chosen] = yt
    return x, y


def evaluate(torch, network, x, y, loss_fn, batch_size, device):
    """Mean loss and predicted class indexes over a set (eval mode, no gradients)."""
    network.eval()
    total, weight, predictions = 0.0, 0, []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device)
            logits = network(xb)
            n = int((yb != IGNORE).sum()) if yb.dim() > 1 else yb.shape[0]
            if n:
                total += float(loss_fn(logits, yb)) * n
                weight += n
            predictions.append(logits.argmax(1).cpu())
    return total / max(weight, 1), torch.cat(predictions)


def fit(torch, network, train_x, train_y, val_x, val_y, loss_fn, options: TrainingOptions,
        device, progress: Progress = no_progress, is_cancelled: IsCancelled = never_cancelled,
        log: Log = no_log) -> dict:
    """The training loop: epochs of shuffled batches (augmented), validation loss per epoch,
    early stopping; the best weights (lowest validation loss) are restored. With ``patience`` 0
    there is no early stopping and the last epoch's weights are kept (fixed-length training).

    Returns:
        ``{"history": [...], "best_epoch": int, "stopped_early": bool, "samples_seen": int}``.
    """
    segmentation = train_y.dim() > 1
    generator = torch.Generator().manual_seed(int(options.seed))
    optimiser = torch.optim.AdamW(network.parameters(), lr=options.learning_rate,
                                  weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=options.epochs)
    history, best = [], (math.inf, 0, None)
    n = train_x.shape[0]
    batches = max(1, math.ceil(n / options.batch_size))
    seen, stopped = 0, False
    for epoch in range(options.epochs):
        network.train()
        order = torch.randperm(n, generator=generator)
        running, count = 0.0, 0
        for b in range(batches):
            check_cancelled(is_cancelled)
            index = order[b * options.batch_size:(b + 1) * options.batch_size]
            if index.numel() < 2 and n > 1:
                continue  # batch norm needs two samples
            xb, yb = train_x[index], train_y[index]
            if options.augment:
                xb, yb = augment(torch, xb, yb, generator, segmentation)
            xb, yb = xb.to(device), yb.to(device)
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(network(xb), yb)
            if torch.isfinite(loss):
                loss.backward()
                optimiser.step()
                running += float(loss.detach()) * index.numel()
                count += index.numel()
            seen += index.numel()
            progress((epoch + (b + 1) / batches) / options.epochs)
        schedule.step()
        val_loss, predicted = evaluate(torch, network, val_x, val_y, loss_fn,
                                        options.batch_size, device)
        valid = val_y != IGNORE
        accuracy = float((predicted[valid] == val_y[valid]).float().mean()) if valid.any() else \
            float("nan")
        row = {"epoch": epoch + 1, "train_loss": running / max(count, 1), "val_loss": val_loss,
               "val_accuracy": accuracy}
        history.append(row)
        log(f"Epoch {epoch + 1}/{options.epochs}: training loss {row['train_loss']:.4f}, "
            f"validation loss {val_loss:.4f}, validation accuracy {accuracy:.3f}")
        if val_loss < best[0] - 1e-6:
            best = (val_loss, epoch + 1, copy.deepcopy(network.state_dict()))
        elif options.patience and epoch + 1 - best[1] >= options.patience:
            log(f"Early stop: no lower validation loss for {options.patience} epochs; keeping "
                f"epoch {best[1]}.")
            stopped = True
            break
    if options.patience and best[2] is not None:
        network.load_state_dict(best[2])
    kept = best[1] if options.patience else len(history)
    return {"history": history, "best_epoch": kept, "stopped_early": stopped,
            "samples_seen": seen}


def fit_within_memory(torch, network, train_x, train_y, val_x, val_y, loss_fn,
                      options: TrainingOptions, device, patch_size: int,
                      progress: Progress = no_progress,
                      is_cancelled: IsCancelled = never_cancelled, log: Log = no_log) -> dict:
    """:func:`fit`, with running out of memory turned into :class:`TrainingMemoryError`
    suggesting a smaller batch, patch or network."""
    try:
        return fit(torch, network, train_x, train_y, val_x, val_y, loss_fn, options, device,
                   progress, is_cancelled, log)
    except (RuntimeError, MemoryError) as exc:
        if isinstance(exc, MemoryError) or "memory" in str(exc).lower():
            raise TrainingMemoryError(
                f"Training ran out of memory with batches of {options.batch_size} "
                f"{patch_size}-pixel {'tiles' if train_y.dim() > 1 else 'patches'}. Use a "
                f"smaller batch size (e.g. {max(1, options.batch_size // 2)}) or patch size "
                f"(e.g. {max(8, patch_size // 2)}), or a smaller network "
                "width.") from exc
        raise
