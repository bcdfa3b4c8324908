"""Shared fixtures: the plugin importable as ``landfusion``, real data, QGIS and qgis_process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT.parent / "shared" / "data").resolve()

# The plugin folder is the repository root; import it under its plugin name, as QGIS does.
sys.path.insert(0, str(ROOT))
from plugin_import import make_importable  # noqa: E402

make_importable(qgis_plugins=True)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def data_path(*parts) -> Path:
    """Returns a path in ../shared/data, skipping the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real Sentinel data not available: {path} is missing (../shared/data)")
    return path


@pytest.fixture(scope="session")
def qgis_app():
    """A headless QgsApplication with Processing and the LandFusion provider registered."""
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    QgsApplication.setPrefixPath("/usr", True)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from landfusion.algorithms.provider import LandFusionProvider

    app.landfusion_provider = LandFusionProvider()  # keep a reference, or the algorithms vanish
    QgsApplication.processingRegistry().addProvider(app.landfusion_provider)
    yield app
    QgsApplication.processingRegistry().removeProvider("landfusion")


@pytest.fixture(scope="session")
def algorithms(qgis_app):
    """One initialised instance of every LandFusion algorithm, in toolbox order."""
    from landfusion.algorithms.provider import algorithm_classes

    instances = []
    for cls in algorithm_classes():
        alg = cls()
        alg.initAlgorithm()
        instances.append(alg)
    return instances


@pytest.fixture
def run_algorithm(qgis_app):
    """Runs ``processing.run`` and returns its result dictionary."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    def run(algorithm_id, parameters, feedback=None):
        context = QgsProcessingContext()
        return processing.run(algorithm_id, parameters, context=context,
                              feedback=feedback or QgsProcessingFeedback())

    return run


def run_qgis_process(algorithm_id, parameters, check=True):
    """Runs an algorithm through scripts/qgis_process.sh and returns (returncode, json, stderr)."""
    args = [str(ROOT / "scripts" / "qgis_process.sh"), "--json", "run", algorithm_id, "--"]
    for key, value in parameters.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        args += [f"{key}={v}" for v in values]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900)
    parsed = None
    start = proc.stdout.find("{")
    if start >= 0:
        try:
            parsed = json.loads(proc.stdout[start:])
        except json.JSONDecodeError:
            parsed = None
    if check and proc.returncode != 0:
        raise AssertionError(
            f"qgis_process failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.returncode, parsed, proc.stdout + proc.stderr


@pytest.fixture
def qgis_process():
    """The :func:`run_qgis_process` helper."""
    return run_qgis_process
