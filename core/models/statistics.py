"""Training statistics of the input bands, stored in the model card (``band_stats``)."""

from __future__ import annotations


def band_statistics(values, band_axis: int = 1) -> list:
    """Per-band training statistics (min, max, mean, std, 2nd/98th percentile, count).

    Args:
        values: an array of training values; ``band_axis`` is the band axis (1 for an
            ``(N, bands)`` sample table, 0 or 1 for image stacks, e.g. ``(bands, H, W)`` or
            ``(N, bands, H, W)``). NaN and infinite values are left out.

    Returns:
        One dict per band, for :attr:`ModelCard.band_stats`.
    """
    import numpy as np

    data = np.moveaxis(np.asarray(values, dtype=np.float64), band_axis, 0)
    data = data.reshape(data.shape[0], -1)
    stats = []
    for band in data:
        band = band[np.isfinite(band)]
        if band.size == 0:
            stats.append(None)
            continue
        p02, p98 = np.percentile(band, [2, 98])
        stats.append({"min": float(band.min()), "max": float(band.max()),
                      "mean": float(band.mean()), "std": float(band.std()),
                      "p02": float(p02), "p98": float(p98), "count": int(band.size)})
    return stats
