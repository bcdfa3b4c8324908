"""Shared machinery of the benchmarks: fair, repeated, interleaved comparisons.

Every comparison in bench/ goes through :func:`compare`:

- each method runs in its own child process, so its peak memory is its own: measured by
  ``/usr/bin/time`` (Linux keeps the larger of a process's peak and its parent's at fork time in
  ``ru_maxrss`` across ``exec``, so the bench's own ``wait4`` would report the parent's memory);
- the methods are run in interleaved pairs, the order alternating (A B, B A, A B, ...), at least
  three times, so a change of machine load hits both sides alike;
- the machine's load average is printed before and after;
- for each method: median wall time and its range, the cores it actually used (CPU time / wall
  time of the child), peak memory; for each method against the baseline: the median of the
  per-pair time ratios and their range.

Every child gets the same GDAL block cache (``GDAL_CACHEMAX``, :data:`GDAL_CACHE_MB`) so no
method wins by caching more than another.

A child may print, as its last stdout line, a JSON object with ``seconds`` and ``cpu_seconds``
of its timed section (for example excluding training a baseline's model); otherwise the whole
child process is timed.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"

#: GDAL block cache (MiB) given to every method of every benchmark: the cache LandFusion
#: sets for itself (core/io/raster.py), so baselines get exactly the same.
GDAL_CACHE_MB = int(os.environ.get("BENCH_GDAL_CACHE_MB", "128"))
#: Cores LandFusion uses (all of them by default); baselines get as many.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
#: Interleaved pairs per comparison.
REPEATS = max(3, int(os.environ.get("BENCH_REPEATS", "3")))


def import_landfusion() -> str:
    """Makes ``import landfusion`` work from a source checkout; returns the plugins folder."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from plugin_import import make_importable

    return make_importable()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. '1.92 1.75 1.40'."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def child_env(extra: Optional[dict] = None) -> dict:
    """Environment of a measured child: the shared GDAL cache, plus ``extra``."""
    env = dict(os.environ, GDAL_CACHEMAX=str(GDAL_CACHE_MB))
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def measure(argv: Sequence[str], env: Optional[dict] = None) -> dict:
    """Runs ``argv`` in a child and returns its timings from ``wait4`` (honest per-process peak).

    Keys: ``seconds`` (the child's timed section if it reports one, else its wall time),
    ``cpu_seconds`` (likewise), ``cores`` (CPU / wall), ``peak_mb`` (max RSS of the child),
    ``process_seconds`` (wall time of the whole child) plus anything the child reported.
    """
    timer = ["/usr/bin/time", "-f", "BENCH_MAXRSS_KB %M"] if os.path.exists("/usr/bin/time") else []
    start = time.perf_counter()
    proc = subprocess.Popen(timer + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env or child_env(), text=True)
    # Read the pipes on threads so a chatty child cannot block; then reap with wait4.
    import threading

    chunks = {"out": [], "err": []}

    def drain(stream, key):
        chunks[key].append(stream.read())

    readers = [threading.Thread(target=drain, args=(proc.stdout, "out")),
               threading.Thread(target=drain, args=(proc.stderr, "err"))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = "".join(chunks["out"]), "".join(chunks["err"])
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    peaks = [int(line.split()[1]) for line in err.splitlines()
             if line.startswith("BENCH_MAXRSS_KB ")]
    result = {"process_seconds": wall, "seconds": wall,
              "cpu_seconds": usage.ru_utime + usage.ru_stime,
              "peak_mb": (peaks[-1] if peaks else usage.ru_maxrss) / 1024.0}
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    if lines:
        reported = json.loads(lines[-1])
        result.update({k: v for k, v in reported.items() if k != "peak_mb"})
    result["cores"] = result["cpu_seconds"] / max(1e-9, result["seconds"])
    return result


@dataclass
class Method:
    """One side of a comparison: a label and the command that runs it once."""

    label: str
    argv: List[str]
    env: Optional[dict] = None
    runs: List[dict] = field(default_factory=list)
    #: Untimed step before every run, e.g. removing the previous run's output so that no method
    #: pays for deleting another's file.
    before: Optional[Callable[[], None]] = None


def compare(methods: Sequence[Method], baseline: str, repeats: int = REPEATS,
            title: str = "", pixels: Optional[int] = None, out=sys.stdout,
            as_time_ratio: bool = False) -> List[dict]:
    """Runs ``methods`` in interleaved rounds (order alternating), prints a Markdown table.

    Args:
        methods: the methods; ``baseline`` is the label the ratios refer to.
        repeats: rounds; each method runs once per round.
        title: printed above the table.
        pixels: when given, a throughput column (k px/s) is added.
        as_time_ratio: print time / baseline time (e.g. "x read floor") instead of the speed-up.

    Returns:
        One summary dict per method.
    """
    before = load_average()
    started = time.strftime("%H:%M:%S")
    for round_index in range(repeats):
        order = list(methods) if round_index % 2 == 0 else list(reversed(methods))
        for method in order:
            if method.before is not None:
                method.before()
            method.runs.append(measure(method.argv, method.env))
            print(f"  [{method.label}] round {round_index + 1}: "
                  f"{method.runs[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    after = load_average()
    base = next(m for m in methods if m.label == baseline)
    summaries = []
    for method in methods:
        seconds = [r["seconds"] for r in method.runs]
        ratios = [(r["seconds"] / b["seconds"]) if as_time_ratio else (b["seconds"] / r["seconds"])
                  for b, r in zip(base.runs, method.runs)]
        summaries.append({
            "label": method.label,
            "seconds": statistics.median(seconds),
            "seconds_range": (min(seconds), max(seconds)),
            "speedup": statistics.median(ratios),
            "speedup_range": (min(ratios), max(ratios)),
            "cores": statistics.median(r["cores"] for r in method.runs),
            "peak_mb": max(r["peak_mb"] for r in method.runs),
            "runs": method.runs,
        })
    if title:
        print(f"{title}\n", file=out)
    print(f"Load average (1/5/15 min) before: {before} (at {started}); after: {after}; "
          f"{CORES} cores; {repeats} interleaved rounds; GDAL_CACHEMAX={GDAL_CACHE_MB} MB for "
          "every method.\n", file=out)
    head = "| method | median time (s) | range (s) |"
    rule = "|---|---:|---:|"
    if pixels:
        head += " k px/s |"
        rule += "---:|"
    what = "time / time of" if as_time_ratio else "speed vs"
    head += f" {what} {baseline} (median, range) | cores used (CPU/wall) | peak memory (MB) |"
    rule += "---:|---:|---:|"
    print(head, file=out)
    print(rule, file=out)
    for s in summaries:
        row = f"| {s['label']} | {s['seconds']:.2f} | {s['seconds_range'][0]:.2f}–" \
              f"{s['seconds_range'][1]:.2f} |"
        if pixels:
            row += f" {pixels / s['seconds'] / 1e3:.0f} |"
        row += f" {s['speedup']:.2f}× ({s['speedup_range'][0]:.2f}–{s['speedup_range'][1]:.2f}) |" \
               f" {s['cores']:.2f} | {s['peak_mb']:.0f} |"
        print(row, file=out)
    print("", file=out, flush=True)
    return summaries


def removing(*patterns):
    """A :attr:`Method.before` that deletes the files matching ``patterns`` (glob patterns):
    every run then writes new files, and no method pays for deleting its previous output."""
    import glob

    def remove() -> None:
        for pattern in patterns:
            for path in glob.glob(str(pattern)):
                if os.path.isfile(path):
                    os.remove(path)

    return remove


def print_ratios(summaries: Sequence[dict], baseline: str, out=sys.stdout) -> None:
    """Prints every method's time / ``baseline``'s time (median and range of the per-round
    ratios) for a second baseline of a :func:`compare` run."""
    by_label = summary_by_label(summaries)
    base = by_label[baseline]["runs"]
    print(f"| method | time / time of {baseline} (median, range) |\n|---|---:|", file=out)
    for s in summaries:
        ratios = [r["seconds"] / b["seconds"] for b, r in zip(base, s["runs"])]
        print(f"| {s['label']} | {statistics.median(ratios):.2f}× ({min(ratios):.2f}–"
              f"{max(ratios):.2f}) |", file=out)
    print("", file=out, flush=True)


def python() -> str:
    """The interpreter benchmarks run their children with."""
    return sys.executable


def report(**values) -> None:
    """Prints a child's result line (JSON) for :func:`measure`."""
    print(json.dumps(values), flush=True)


class Timer:
    """Times a section in wall and CPU (all threads of this process) seconds."""

    def __enter__(self):
        self._wall = time.perf_counter()
        self._cpu = _cpu()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = _cpu() - self._cpu
        return False


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary_by_label(summaries: Sequence[dict]) -> Dict[str, dict]:
    """Summaries keyed by label."""
    return {s["label"]: s for s in summaries}
