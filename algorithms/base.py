"""Shared behaviour of the LandFusion Processing algorithms.

Each algorithm parses its parameters, calls one engine function with the callables built here,
and lets :meth:`LandFusionAlgorithm.run_engine` turn engine errors into
``QgsProcessingException`` with the engine's message.
"""

import os

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons", "landfusion.svg")


class LandFusionAlgorithm(QgsProcessingAlgorithm):
    """Base class: naming, icon, feedback callables and error conversion."""

    GROUP = ""
    GROUP_ID = ""

    def tr(self, text):
        """Translates a user-visible string."""
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self):  # noqa: N802 (QGIS API name)
        """Returns a new instance of the same algorithm."""
        return type(self)()

    def group(self):
        """Returns the translated group name."""
        return self.tr(self.GROUP)

    def groupId(self):  # noqa: N802 (QGIS API name)
        """Returns the group id."""
        return self.GROUP_ID

    def icon(self):
        """Returns the LandFusion icon."""
        return QIcon(ICON)

    def helpUrl(self):  # noqa: N802 (QGIS API name)
        """Returns no online help: the help text is complete offline."""
        return ""

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
            from ..core.dependencies import missing_message
        except ImportError:  # pragma: no cover - plugin folder damaged
            missing_message = None
        try:
            return function(*args, **kwargs)
        except ImportError as exc:
            hint = missing_message() if missing_message else ""
            raise QgsProcessingException(
                self.tr(f"A Python package LandFusion needs is missing ({exc}). {hint}")
            ) from exc
        except Exception as exc:
            from ..core.errors import LandFusionError

            if isinstance(exc, LandFusionError):
                raise QgsProcessingException(str(exc)) from exc
            raise
