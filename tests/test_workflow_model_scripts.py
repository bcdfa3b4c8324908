"""The scripts that write the graphical models (scripts/build_*_model.py) build the committed
workflows: the same inputs, steps, wiring between the steps and outputs."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _wiring(model):
    """Inputs, outputs and, per step, its algorithm and the sources that are not fixed values."""
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    steps = {}
    for child_id, child in model.childAlgorithms().items():
        links = {name: sorted((s.source(), s.parameterName(), s.outputChildId(), s.outputName())
                              for s in sources if s.source() != Source.StaticValue)
                 for name, sources in child.parameterSources().items()}
        steps[child_id] = (child.algorithmId(), {k: v for k, v in links.items() if v},
                           sorted(child.modelOutputs()))
    return (sorted(p.name() for p in model.parameterDefinitions()
                   if not p.isDestination()), steps)


@pytest.mark.parametrize("script, name", [
    ("build_classification_model.py", "classificationworkflow.model3"),
    ("build_monitoring_model.py", "monitoring.model3"),
])
def test_script_builds_the_committed_workflow(qgis_app, tmp_path, script, name):
    from qgis.core import QgsProcessingModelAlgorithm

    proc = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts" / script), str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / name}" in proc.stdout
    written, committed = QgsProcessingModelAlgorithm(), QgsProcessingModelAlgorithm()
    assert written.fromFile(str(tmp_path / name))
    assert committed.fromFile(str(ROOT / "resources" / "models3" / name))
    inputs, steps = _wiring(written)
    assert (inputs, steps) == _wiring(committed)
    assert len(steps) >= 3 and inputs
