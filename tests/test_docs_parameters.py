"""The documentation's parameter tables list every algorithm's current parameter ids with the
labels the Processing dialog shows."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ID = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def _tables():
    """Every markdown table of README.md and docs/ whose first column names parameter ids, as
    ``(where, {id: label cell})``; a row naming several ids maps each to the whole cell."""
    for path in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        header, rows = None, {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines() + [""], 1):
            cells = [c.strip() for c in line.split("|")[1:-1]] if line.startswith("|") else None
            if cells and header is None:
                header = (number, cells)
            elif cells and set(line) <= set("|-: "):
                continue
            elif cells:
                for pid in ID.findall(cells[0]):
                    rows[pid] = cells[1] if len(cells) > 1 else ""
            else:
                if header and header[1][:2] == ["parameter", "label"]:
                    yield f"{path.name}:{header[0]}", rows
                header, rows = None, {}


def test_every_algorithm_has_a_parameter_table_with_current_ids_and_labels(algorithms):
    tables = list(_tables())
    assert len(tables) >= len(algorithms)
    for alg in algorithms:
        labels = {d.name(): d.description() for d in alg.parameterDefinitions()}
        matching = [(where, rows) for where, rows in tables if set(rows) == set(labels)]
        assert matching, (f"no table in README.md or docs/ lists exactly the parameters of "
                          f"{alg.id()}: {sorted(labels)}")
        for where, rows in matching:
            for pid, cell in rows.items():
                assert labels[pid] in cell, f"{where}: {pid} is labelled '{labels[pid]}', not '{cell}'"
