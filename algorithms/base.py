"""Shared behaviour of the LandFusion Processing algorithms.

An algorithm file declares its parameters with the ``addParameter…`` helpers, implements
:meth:`LandFusionAlgorithm.check` (cheap validation, raising engine errors) and
:meth:`LandFusionAlgorithm.process` (one engine call), and keeps its long help in
``algorithms/help/<name>.html``. The base class does the rest, once for every algorithm:

- enum values given as numbers, keys or titles (any case) are accepted (:mod:`.enums`);
- no output may overwrite an input or another output, side files included (:mod:`.safety`),
  checked in ``checkParameterValues`` and again before ``processAlgorithm`` runs;
- engine errors and missing packages become ``QgsProcessingException`` (or a failed check) with
  the engine's message;
- class, probability and confidence raster outputs are styled when QGIS loads them (:mod:`.styles`).

An algorithm that overrides ``processAlgorithm`` or ``checkParameterValues`` itself still gets the
enum and output checks: the overrides are wrapped when the class is defined.
"""

import functools
import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from . import enums, preflight, safety, styles

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources")
ICON = os.path.join(RESOURCES, "icons", "landfusion.svg")
HELP_DIR = os.path.join(os.path.dirname(__file__), "help")


def _entry(method):
    """Wraps an algorithm's own processAlgorithm so the shared checks always run first."""

    @functools.wraps(method)
    def process_algorithm(self, parameters, context, feedback):
        parameters = self.prepare_parameters(parameters, context)
        outputs = method(self, parameters, context, feedback)
        styles.attach(self, outputs, context)
        return outputs

    process_algorithm.landfusion_wrapped = True
    return process_algorithm


def _check_entry(method):
    """Wraps an algorithm's own checkParameterValues so the shared checks always run first."""

    @functools.wraps(method)
    def check_parameter_values(self, parameters, context):
        parameters, problem = self.shared_checks(parameters, context)
        if problem:
            return False, problem
        return method(self, parameters, context)

    check_parameter_values.landfusion_wrapped = True
    return check_parameter_values


class LandFusionAlgorithm(QgsProcessingAlgorithm):
    """Base class: naming, help, parameter helpers, shared checks, error conversion, styles."""

    #: Toolbox group id (see :mod:`.groups`); subclasses set one of ``groups.GROUPS``.
    GROUP = ""
    #: Former spelling: GROUP held the name and GROUP_ID the id; still understood.
    GROUP_ID = ""
    #: Name of the icon in resources/icons (without .svg); empty: the LandFusion icon.
    ICON = ""

    THREADS = "THREADS"
    MEMORY = "MEMORY"
    #: Former parameter ids still accepted, mapped to the current ones.
    PARAMETER_ALIASES = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "processAlgorithm" in own and not getattr(own["processAlgorithm"],
                                                      "landfusion_wrapped", False):
            cls.processAlgorithm = _entry(own["processAlgorithm"])
        if "checkParameterValues" in own and not getattr(own["checkParameterValues"],
                                                          "landfusion_wrapped", False):
            cls.checkParameterValues = _check_entry(own["checkParameterValues"])

    # -- identity ------------------------------------------------------------------------------

    def tr(self, text):
        """Translates a user-visible string (format it afterwards: ``tr("{} x").format(n)``)."""
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self):
        """Returns a new instance of the same algorithm."""
        return type(self)()

    def group(self):
        """Returns the translated toolbox group name."""
        from .groups import group_name

        return self.tr(group_name(self.groupId(), self.GROUP))

    def groupId(self):
        """Returns the stable toolbox group id."""
        from .groups import group_id

        return group_id(self.GROUP_ID or self.GROUP)

    def icon(self):
        """Returns the algorithm family's icon."""
        return QIcon(self.svgIconPath())

    def svgIconPath(self):
        """Returns the path of the algorithm family's SVG icon."""
        if self.ICON:
            path = os.path.join(RESOURCES, "icons", self.ICON + ".svg")
            if os.path.exists(path):
                return path
        from .groups import group_icon

        return group_icon(self.groupId()) or ICON

    def canExecute(self):
        """Returns (False, what to install and how) when a package this algorithm needs is missing."""
        from ..core.dependencies import missing_message

        message = missing_message(self.name())
        return not message, message

    def helpUrl(self):
        """Returns no online help: the help text is complete offline."""
        return ""

    def help_values(self):
        """Returns values for ``{placeholders}`` in the help file (e.g. generated lists)."""
        return {}

    def shortHelpString(self):
        """Returns the help text, read from ``algorithms/help/<name>.html``."""
        path = os.path.join(HELP_DIR, self.name() + ".html")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            return ""
        text = "".join(line.strip() + ("" if line.rstrip().endswith(">") else " ")
                       for line in text.splitlines() if not line.lstrip().startswith("<!--"))
        values = self.help_values()
        return text.format(**values) if values else text

    # -- parameter helpers -----------------------------------------------------------------------

    def _add(self, parameter, help=None, advanced=False, **metadata):
        """Adds ``parameter`` with its help text, advanced flag and LandFusion metadata."""
        if help:
            parameter.setHelp(self.tr(help))
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        if metadata:
            merged = dict(parameter.metadata())
            merged.setdefault("landfusion", {}).update(metadata)
            parameter.setMetadata(merged)
        self.addParameter(parameter)
        return parameter

    def addParameterRasterLayer(self, name, description, optional=False, advanced=False,
                                help=None):
        """Adds a raster layer input."""
        return self._add(QgsProcessingParameterRasterLayer(
            name, self.tr(description), optional=optional), help, advanced)

    def addParameterVectorLayer(self, name, description, types=None, optional=False,
                                advanced=False, help=None):
        """Adds a vector layer input (any geometry unless ``types`` is given)."""
        return self._add(QgsProcessingParameterVectorLayer(
            name, self.tr(description), types or [QgsProcessing.TypeVectorAnyGeometry],
            optional=optional), help, advanced)

    def addParameterFeatureSource(self, name, description, types=None, optional=False,
                                  advanced=False, help=None):
        """Adds a feature source input (a layer, a file or a selection)."""
        return self._add(QgsProcessingParameterFeatureSource(
            name, self.tr(description), types or [QgsProcessing.TypeVectorAnyGeometry],
            optional=optional), help, advanced)

    def addParameterMultipleRasters(self, name, description, optional=False, advanced=False,
                                    help=None):
        """Adds a list of raster inputs."""
        return self._add(QgsProcessingParameterMultipleLayers(
            name, self.tr(description), QgsProcessing.TypeRaster, optional=optional),
            help, advanced)

    def addParameterFile(self, name, description, extension="", file_filter="", optional=False,
                         advanced=False, help=None):
        """Adds an input file (``extension`` without dot, or a Qt ``file_filter``)."""
        parameter = QgsProcessingParameterFile(
            name, self.tr(description), extension=extension, optional=optional,
            fileFilter=self.tr(file_filter) if file_filter and not extension else "")
        return self._add(parameter, help, advanced)

    def addParameterInt(self, name, description, default=None, minimum=None, maximum=None,
                        optional=False, advanced=False, help=None):
        """Adds an integer; the range is shown by QGIS and checked before running."""
        return self._number(QgsProcessingParameterNumber.Integer, name, description, default,
                            minimum, maximum, optional, advanced, help)

    def addParameterFloat(self, name, description, default=None, minimum=None, maximum=None,
                          optional=False, advanced=False, help=None):
        """Adds a floating-point number."""
        return self._number(QgsProcessingParameterNumber.Double, name, description, default,
                            minimum, maximum, optional, advanced, help)

    def _number(self, kind, name, description, default, minimum, maximum, optional, advanced,
                help):
        parameter = QgsProcessingParameterNumber(name, self.tr(description), kind,
                                                 defaultValue=default, optional=optional)
        if minimum is not None:
            parameter.setMinimum(minimum)
        if maximum is not None:
            parameter.setMaximum(maximum)
        return self._add(parameter, help, advanced)

    def addParameterBool(self, name, description, default=False, advanced=False, help=None):
        """Adds a check box."""
        return self._add(QgsProcessingParameterBoolean(name, self.tr(description),
                                                       defaultValue=default), help, advanced)

    def addParameterString(self, name, description, default=None, optional=False,
                           advanced=False, help=None):
        """Adds a free text."""
        return self._add(QgsProcessingParameterString(
            name, self.tr(description), defaultValue=default, optional=optional), help, advanced)

    def addParameterEnum(self, name, description, choices, default=0, multiple=False,
                         optional=False, static=False, advanced=False, help=None):
        """Adds an enum built from a :class:`core.choices.Choices` vocabulary.

        Values may be given as index, key or title (any case); read them back with
        :meth:`parameterAsChoice`. ``static`` stores keys instead of indices (for vocabularies
        that grow, like index names, so saved models keep their meaning).
        """
        titles = list(getattr(choices, "titles", choices))
        keys = [str(k) for k in choices]
        if static:
            titles = keys
        else:
            titles = [self.tr(t) for t in titles]
        if isinstance(default, str) and not static:
            default = keys.index(default)
        parameter = QgsProcessingParameterEnum(
            name, self.tr(description), options=titles, allowMultiple=multiple,
            defaultValue=default, optional=optional, usesStaticStrings=static)
        return self._add(parameter, help, advanced, keys=keys)

    def addParameterThreads(self, help="Threads used in parallel; 0 uses all cores."):
        """Adds the advanced THREADS parameter every multi-threaded algorithm shares."""
        return self.addParameterInt(self.THREADS, "Threads (0: all cores)", 0, 0, 1024,
                                    advanced=True, help=help)

    def addParameterMemory(self, default=1024,
                           help="Memory budget for one block of pixels, in megabytes."):
        """Adds the advanced MEMORY parameter (MB) of block-wise algorithms."""
        return self.addParameterInt(self.MEMORY, "Memory per block (MB)", default, 16, 65536,
                                    advanced=True, help=help)

    def addParameterRasterOutput(self, name, description, optional=False, style=None,
                                 advanced=False, help=None):
        """Adds a raster output; ``style`` is 'classes', 'probability' or 'confidence'.

        Optional outputs are not created unless the user asks for them. Class outputs get the
        ``.qml`` the engine writes beside them; probability and confidence outputs get ramps.
        """
        parameter = QgsProcessingParameterRasterDestination(
            name, self.tr(description),
            defaultValue=None if optional else QgsProcessing.TEMPORARY_OUTPUT,
            optional=optional, createByDefault=not optional)
        return self._add(parameter, help, advanced, **({"style": style} if style else {}))

    def addParameterVectorOutput(self, name, description, kind=QgsProcessing.TypeVectorAnyGeometry,
                                 optional=False, advanced=False, help=None):
        """Adds a vector output (GeoPackage by default)."""
        parameter = QgsProcessingParameterVectorDestination(
            name, self.tr(description), kind,
            defaultValue=None if optional else QgsProcessing.TEMPORARY_OUTPUT,
            optional=optional, createByDefault=not optional)
        return self._add(parameter, help, advanced)

    def addParameterFileOutput(self, name, description, file_filter, optional=False,
                               temporary=False, created=None, sidecars=(), advanced=False,
                               help=None):
        """Adds a file output; ``sidecars`` are suffixes written beside it (e.g. '.json').

        ``sidecars`` replace the extension (``report.html`` → ``report.json``), so the output
        check protects them too.
        """
        parameter = QgsProcessingParameterFileDestination(
            name, self.tr(description), self.tr(file_filter),
            defaultValue=QgsProcessing.TEMPORARY_OUTPUT if temporary else None,
            optional=optional, createByDefault=(not optional) if created is None else created)
        metadata = {"sidecars": list(sidecars)} if sidecars else {}
        return self._add(parameter, help, advanced, **metadata)

    def addParameterFolderOutput(self, name, description, optional=False, advanced=False,
                                 help=None):
        """Adds an output folder."""
        return self._add(QgsProcessingParameterFolderDestination(
            name, self.tr(description), optional=optional), help, advanced)

    # -- reading parameters ----------------------------------------------------------------------

    def parameterAsChoice(self, parameters, name, context):
        """Returns the key (or list of keys, for multiple enums) chosen for an enum parameter."""
        return enums.as_keys(self, parameters, name, context)

    def parameterAsSourcePath(self, parameters, name, context):
        """Returns the source of a layer parameter (path or URI), or None when not set."""
        layer = self.parameterAsLayer(parameters, name, context)
        return layer.source() if layer is not None else None

    def parameterAsOptionalDouble(self, parameters, name, context):
        """Returns a number, or None when the optional parameter is left empty."""
        value = parameters.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.parameterAsDouble(parameters, name, context)

    def parameterAsOptionalInt(self, parameters, name, context):
        """Returns an integer, or None when the optional parameter is left empty."""
        value = parameters.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.parameterAsInt(parameters, name, context)

    # -- the run ---------------------------------------------------------------------------------

    def normalise_parameters(self, parameters):
        """Returns the parameters with former ids renamed and enum values in QGIS's form."""
        parameters = dict(parameters)
        for old, new in self.PARAMETER_ALIASES.items():
            if old in parameters and new not in parameters:
                parameters[new] = parameters.pop(old)
        return enums.normalise(self, parameters)

    def prepare_parameters(self, parameters, context):
        """Runs the shared checks, then refuses outputs the free disk space cannot hold."""
        parameters, problem = self.shared_checks(parameters, context)
        if problem:
            raise QgsProcessingException(problem)
        try:
            preflight.check_disk_space(self, parameters, context)
        except Exception as exc:  # converted or re-raised below
            message = self.error_message(exc)
            if message is None:
                raise
            raise QgsProcessingException(message) from exc
        return parameters

    def shared_checks(self, parameters, context):
        """Returns (normalised parameters, message of the first problem or None).

        Checked in order: missing packages, enum values, outputs overwriting inputs or outputs,
        layer inputs of the wrong kind, numbers outside their range, outputs in places that
        cannot hold them.
        """
        from ..core.errors import LandFusionError

        ready, missing = self.canExecute()  # qgis_process never asks canExecute() itself
        if not ready:
            return parameters, missing
        problem = enums.unknown_choice(self, parameters)
        if problem:
            return parameters, problem
        parameters = self.normalise_parameters(parameters)
        problem = safety.output_conflict(self, parameters, context)
        if problem:
            return parameters, problem
        try:
            preflight.check_input_kinds(self, parameters, context)
            preflight.check_numbers(self, parameters)
            preflight.check_output_places(self, parameters, context)
        except LandFusionError as exc:
            return parameters, str(exc)
        return parameters, None

    # -- output size estimates (free-space check) -------------------------------------------------

    def estimate_outputs(self, parameters, context):
        """Returns {output name: estimated bytes} of the raster outputs, from grid, bands, type.

        The grid is :meth:`output_grid`, bands and data type :meth:`output_layouts`; algorithms
        whose outputs have another grid or a band count known only to them override those.
        """
        from ..core.io.preflight import raster_bytes

        grid = self.output_grid(parameters, context)
        if not grid:
            return {}
        return {name: raster_bytes(grid[0], grid[1], bands, dtype)
                for name, (bands, dtype) in self.output_layouts(parameters, context).items()}

    def output_grid(self, parameters, context):
        """Returns (width, height) of the raster outputs: by default the first raster input's."""
        return preflight.first_raster_grid(self, parameters, context)

    def output_layouts(self, parameters, context):
        """Returns {raster output name: (bands, dtype)}; by default from the output's style
        (probability outputs: one band per class of :meth:`model_path`)."""
        return preflight.raster_output_layouts(self, parameters, context)

    def model_path(self, parameters, context):
        """Returns the model file the algorithm reads, if any (None)."""
        return None

    def checkParameterValues(self, parameters, context):
        """Runs the output check, QGIS's checks, then :meth:`check`, converting engine errors."""
        parameters, problem = self.shared_checks(parameters, context)
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            self.check(parameters, context)
        except Exception as exc:  # converted below
            message = self.error_message(exc)
            return False, message if message is not None else self.unexpected_error(exc)
        return True, ""

    def check(self, parameters, context):
        """Validates the parameters cheaply before running; raises LandFusionError."""

    def processAlgorithm(self, parameters, context, feedback):
        """Runs the shared checks, then :meth:`process`; styles the outputs."""
        parameters = self.prepare_parameters(parameters, context)
        try:
            outputs = self.process(parameters, context, feedback)
        except QgsProcessingException:
            raise
        except Exception as exc:  # converted below
            message = self.error_message(exc)
            if message is None:
                message = self.unexpected_error(exc, feedback)
            raise QgsProcessingException(message) from exc
        styles.attach(self, outputs, context)
        return outputs

    def process(self, parameters, context, feedback):
        """Runs the algorithm; returns the outputs dictionary."""
        raise NotImplementedError

    def error_message(self, exc):
        """Returns the user message for an engine error, a missing package, a full disk or
        memory (None: a bug, reported by :meth:`unexpected_error`)."""
        import errno

        from ..core.errors import LandFusionError

        if isinstance(exc, LandFusionError):
            return str(exc)
        if isinstance(exc, ImportError):
            from ..core.dependencies import missing_message

            return self.tr("A Python package LandFusion needs is missing ({}). {}").format(
                exc, missing_message()).strip()
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) \
                or "No space left on device" in str(exc):
            return self.tr("No space left on the disk while writing the outputs ({}); nothing "
                           "was kept. Free some disk space or write to another disk.").format(exc)
        if isinstance(exc, MemoryError):
            return self.tr("Not enough memory for this run; lower the memory per block "
                           "(MEMORY), the tile or batch size, or close other programs.")
        return None

    def unexpected_error(self, exc, feedback=None):
        """Returns the message for an error LandFusion did not foresee; logs its traceback.

        The user reads what failed and how to report it; the traceback goes to the log's debug
        level (qgis_process --verbose, the Processing log), never alone in place of a message.
        """
        import traceback

        if feedback is not None:
            feedback.pushDebugInfo("".join(traceback.format_exception(
                type(exc), exc, exc.__traceback__)))
        return self.tr("{} stopped on an unexpected error: {}: {}. This is a bug in LandFusion; "
                       "please report it with the parameters used and the Processing log.").format(
            self.displayName(), type(exc).__name__, exc)

    @staticmethod
    def callbacks(feedback):
        """Returns the progress/cancel/log callables the engine functions take."""

        def progress(fraction):
            feedback.setProgress(100.0 * fraction)

        return {
            "progress": progress,
            "is_cancelled": feedback.isCanceled,
            "log": feedback.pushInfo,
            "warn": feedback.pushWarning,
        }

    def run_engine(self, function, *args, **kwargs):
        """Calls an engine function; engine errors become QgsProcessingException."""
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # converted or re-raised below
            message = self.error_message(exc)
            if message is None:
                raise
            raise QgsProcessingException(message) from exc
