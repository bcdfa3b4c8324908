"""Progress, cancellation and logging callables shared by all engine functions.

Engine functions take plain callables so they run the same under QGIS, in scripts and in tests:
``progress(fraction)`` with a fraction in [0, 1], ``is_cancelled()`` returning a bool, and
``log(message)`` / ``warn(message)`` for the user-facing log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Callable, Iterator

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


def log_messages(log: Log, warn: Log, notes=(), warnings=()) -> None:
    """Passes notes to ``log`` and warnings to ``warn``, each in order."""
    for note in notes:
        log(note)
    for message in warnings:
        warn(message)


def thread_count(threads: int = 0) -> int:
    """Threads to use: ``threads`` when positive, else every core this process may run on."""
    if threads and threads > 0:
        return int(threads)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def check_cancelled(is_cancelled: IsCancelled) -> None:
    """Raises :class:`CancelledError` when the user asked to stop (or SIGTERM was received)."""
    if _termination["received"]:
        raise CancelledError(TERMINATED_MESSAGE)
    if is_cancelled():
        raise CancelledError("Cancelled by the user; no output was written.")


TERMINATED_MESSAGE = "Stopped by a termination signal (SIGTERM); no output was written."
_termination = {"received": False, "deferred": 0}


def _on_sigterm(signum, frame) -> None:
    _termination["received"] = True
    if not _termination["deferred"]:
        raise CancelledError(TERMINATED_MESSAGE)


@contextlib.contextmanager
def sigterm_cancels() -> Iterator[None]:
    """Treats SIGTERM like a cancel while the block runs: :class:`CancelledError` is raised in
    the main thread, so atomic outputs remove their temporary files on the way out.

    The handler is installed only in the main thread (the only one Python delivers signals to;
    ``qgis_process`` runs algorithms there) and only when no one else installed one; nested uses
    keep the outer handler. The previous handler is restored afterwards.
    """
    installed = False
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
                installed = True
        except (ValueError, OSError, AttributeError):  # no signals on this platform/interpreter
            installed = False
    try:
        yield
    except BaseException:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _termination["received"] = False
        raise
    if installed:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if _termination["received"]:
            # The signal came while the output was being renamed into place: the output is
            # complete; terminate now as the sender asked.
            _termination["received"] = False
            os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def termination_deferred() -> Iterator[None]:
    """Lets a short step that must not be cut in the middle (renaming the files of an output into
    place) finish before a SIGTERM received meanwhile is acted upon."""
    _termination["deferred"] += 1
    try:
        yield
    finally:
        _termination["deferred"] -= 1


def sub_progress(progress: Progress, start: float, end: float) -> Progress:
    """Maps a step's own [0, 1] progress onto the [start, end] part of an overall progress."""

    def report(fraction: float) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0))

    return report
