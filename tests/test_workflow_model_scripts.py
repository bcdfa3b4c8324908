"""The scripts that write the graphical models (scripts/build_*_model.py) build the committed
workflows exactly: the same inputs, steps and wiring, the same fixed option values of every
step (a changed algorithm default makes the committed file stale), the same outputs with their
defaults, and the same help."""

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


def _fixed_values(model):
    """Per step, every option given a fixed value: {child id: {parameter: [values]}}."""
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    return {child_id: {name: [s.staticValue() for s in sources]
                       for name, sources in child.parameterSources().items()
                       if any(s.source() == Source.StaticValue for s in sources)}
            for child_id, child in model.childAlgorithms().items()}


def _outputs(model):
    """Each model output as the model's dialog offers it: default, created by default, optional."""
    from qgis.core import QgsProcessingParameterDefinition

    return {p.name(): (p.defaultValue(), p.createByDefault(),
                       bool(p.flags() & QgsProcessingParameterDefinition.FlagOptional))
            for p in model.destinationParameterDefinitions()}


def _differences(written, committed, path=""):
    """Paths where two nested maps/lists differ (for a readable failure)."""
    if isinstance(written, dict) and isinstance(committed, dict):
        return [d for key in sorted(set(written) | set(committed), key=str)
                for d in _differences(written.get(key), committed.get(key), f"{path}/{key}")]
    if isinstance(written, list) and isinstance(committed, list) and \
            len(written) == len(committed):
        return [d for i, (a, b) in enumerate(zip(written, committed))
                for d in _differences(a, b, f"{path}[{i}]")]
    return [] if written == committed else [f"{path}: script {written!r}, file {committed!r}"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both workflows as the scripts write them now, in a scratch folder."""
    folder = tmp_path_factory.mktemp("models3")
    for script, name in SCRIPTS:
        proc = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts" / script), str(folder)],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {folder / name}" in proc.stdout
    return folder


SCRIPTS = (("build_classification_model.py", "classificationworkflow.model3"),
           ("build_monitoring_model.py", "monitoring.model3"))


@pytest.mark.parametrize("script, name", SCRIPTS)
def test_script_builds_the_committed_workflow(qgis_app, built, script, name):
    from qgis.core import QgsProcessingModelAlgorithm

    written, committed = QgsProcessingModelAlgorithm(), QgsProcessingModelAlgorithm()
    assert written.fromFile(str(built / name))
    assert committed.fromFile(str(ROOT / "resources" / "models3" / name))
    inputs, steps = _wiring(written)
    assert (inputs, steps) == _wiring(committed)
    assert len(steps) >= 3 and inputs
    assert _fixed_values(written) == _fixed_values(committed), \
        f"{name} is stale: run scripts/{script}"
    assert _outputs(written) == _outputs(committed)
    # everything else the file stores (positions, descriptions, help, input definitions)
    differences = _differences(written.toVariant(), committed.toVariant())
    assert not differences, f"{name} differs from scripts/{script}: {differences[:5]}"


def test_classification_workflow_uses_the_current_defaults(qgis_app):
    """The shipped workflow trains trainclassifier's current default classifier (no stale tree
    count) and writes the training report, which holds the validation grouped by polygon."""
    from qgis.core import QgsApplication, QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(ROOT / "resources" / "models3" / "classificationworkflow.model3"))
    train = QgsApplication.processingRegistry().algorithmById("landfusion:trainclassifier")
    fixed = _fixed_values(model)["train"]
    for parameter in train.parameterDefinitions():
        if parameter.name() in fixed and parameter.name() != "ALGORITHM":
            assert fixed[parameter.name()] == [parameter.defaultValue()], parameter.name()
    assert fixed["TREES"] == [0]  # 0: the algorithm's own default (Random Forest: 30 trees)
    assert fixed["ALGORITHM"] == [0] and train.parameterDefinition("ALGORITHM").options()[0] \
        == "Random Forest"
    default, created, _ = _outputs(model)["train:Training report"]
    assert created, "the workflow's training report is not created by default"
