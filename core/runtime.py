"""Progress, cancellation and logging callables shared by all engine functions.

Engine functions take plain callables so they run the same under QGIS, in scripts and in tests:
``progress(fraction)`` with a fraction in [0, 1], ``is_cancelled()`` returning a bool, and
``log(message)`` / ``warn(message)`` for the user-facing log.
"""

from __future__ import annotations

from typing import Callable

from .errors import CancelledError

Progress = Callable[[float], None]
IsCancelled = Callable[[], bool]
Log = Callable[[str], None]


def no_progress(fraction: float) -> None:
    """Ignores a progress report."""


def never_cancelled() -> bool:
    """Reports that nothing was cancelled."""
    return False


def no_log(message: str) -> None:
    """Ignores a log message."""


def check_cancelled(is_cancelled: IsCancelled) -> None:
    """Raises :class:`CancelledError` when the user asked to stop."""
    if is_cancelled():
        raise CancelledError("Cancelled by the user; no output was written.")


def sub_progress(progress: Progress, start: float, end: float) -> Progress:
    """Maps a step's own [0, 1] progress onto the [start, end] part of an overall progress."""

    def report(fraction: float) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0))

    return report
