"""Runs every benchmark in bench/ (files named bench_*.py) and collects their tables.

Each benchmark is a standalone script that generates its data once under bench/data/, measures
LandFusion against a baseline in the same run, and prints a Markdown table. The tables are written
to bench/results/<name>.md as well.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(selected):
    """Runs the selected benchmarks (all when none named) and returns the exit status."""
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    status = 0
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem[len("bench_"):]
        if selected and name not in selected:
            continue
        print(f"## {name}", flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            status = 1
        (results / f"{name}.md").write_text(proc.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
