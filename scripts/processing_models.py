"""Building LandFusion's graphical models (resources/models3/*.model3) with QGIS's model API.

The scripts that write a model (``build_classification_model.py``, ``build_monitoring_model.py``)
import this module first: it makes QGIS start without a display, then gives them the steps they
share: :func:`start_processing` (QGIS, Processing and the LandFusion provider),
:func:`add_input` and :func:`add_step` (a model input, a child algorithm with its outputs) and
:func:`save`. Run the scripts with QGIS's Python from the repository root; an argument names
another folder to write to (the tests compare such a model with the committed one).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Where the models live; the provider lists every file of this folder in the toolbox.
MODELS = os.path.join(ROOT, "resources", "models3")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402 (QGIS must find the platform variable first)
    QgsApplication,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterDefinition,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

_KEEP = []  # the application and the provider live as long as the script


def from_parameter(name: str) -> list:
    """A child parameter source: the model input ``name``."""
    return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]


def from_output(child_id: str, output: str) -> list:
    """A child parameter source: output ``output`` of step ``child_id``."""
    return [QgsProcessingModelChildParameterSource.fromChildOutput(child_id, output)]


def static(value) -> list:
    """A child parameter source: a fixed value."""
    return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]


def start_processing():
    """Starts QGIS and Processing with the LandFusion provider; returns the algorithm registry."""
    app = QgsApplication([], False)
    app.initQgis()
    _KEEP.append(app)
    sys.path.insert(0, ROOT)
    from plugin_import import make_importable

    make_importable(qgis_plugins=True)
    from processing.core.Processing import Processing

    Processing.initialize()
    from landfusion.algorithms.provider import LandFusionProvider

    provider = LandFusionProvider()
    _KEEP.append(provider)
    registry = QgsApplication.processingRegistry()
    registry.addProvider(provider)
    return registry


def add_input(model, parameter, x: float, y: float, help_text: str) -> None:
    """Adds a model input with its help text at (x, y) in the modeler."""
    parameter.setHelp(help_text)
    component = QgsProcessingModelParameter(parameter.name())
    component.setPosition(QPointF(x, y))
    model.addModelParameter(parameter, component)


def add_step(model, child_id: str, algorithm: str, description: str, sources: dict,
             outputs: dict, x: float, y: float, depends=(), store_defaults: bool = False) -> None:
    """Adds a child algorithm at (x, y).

    Args:
        sources: parameter name -> sources (:func:`from_parameter`, :func:`from_output`,
            :func:`static`).
        outputs: child output -> (model output name, description, x, y).
        depends: child ids that must run first.
        store_defaults: store every other mandatory option with its default, as a user would
            see it in the step's dialog (a model only validates with a value for each).
    """
    child = QgsProcessingModelChildAlgorithm(algorithm)
    child.setChildId(child_id)
    child.setDescription(description)
    child.setPosition(QPointF(x, y))
    for name, value in sources.items():
        child.addParameterSources(name, value)
    if store_defaults:
        definition = QgsApplication.processingRegistry().algorithmById(algorithm)
        for parameter in definition.parameterDefinitions():
            if parameter.name() in sources or parameter.isDestination() or (
                    parameter.flags() & QgsProcessingParameterDefinition.FlagOptional):
                continue
            child.addParameterSources(parameter.name(), static(parameter.defaultValue()))
    model_outputs = {}
    for child_output, (name, text, out_x, out_y) in outputs.items():
        output = QgsProcessingModelOutput(name, text)
        output.setChildId(child_id)
        output.setChildOutputName(child_output)
        output.setPosition(QPointF(out_x, out_y))
        model_outputs[name] = output
    child.setModelOutputs(model_outputs)
    child.setDependencies(list(depends))
    model.addChildAlgorithm(child)


def save(model, file_name: str, note: str = "") -> int:
    """Writes the model to resources/models3/``file_name`` (or to the folder given as the
    script's argument); returns the exit status."""
    folder = sys.argv[1] if len(sys.argv) > 1 else MODELS
    target = os.path.join(folder, file_name)
    os.makedirs(folder, exist_ok=True)
    if not model.toFile(target):
        print(f"cannot write {target}", file=sys.stderr)
        return 1
    print(f"wrote {target}{note}")
    return 0
