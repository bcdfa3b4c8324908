"""Exceptions raised by the LandFusion engine.

Every problem the engine detects is a :class:`LandFusionError`; the Processing adapters turn it
into a ``QgsProcessingException`` with the same message, so messages are written for the user:
they name the problem and, where possible, the fix.
"""


class LandFusionError(Exception):
    """Root of all errors raised by the LandFusion engine."""


class InputError(LandFusionError):
    """An input (raster, vector, parameter) cannot be used as given."""


class BandError(InputError):
    """Bands are missing, unnamed or do not match what is required."""


class CrsError(InputError):
    """A coordinate reference system is missing or cannot be handled."""


class NoOverlapError(InputError):
    """Inputs that must overlap do not."""


class NoDataError(InputError):
    """An input holds no valid pixels or samples where they are needed."""


class ModelError(InputError):
    """A model file is unreadable, not a LandFusion model, or does not fit the input."""


class OutputError(LandFusionError):
    """An output cannot be written."""


class DependencyError(LandFusionError):
    """An optional Python package needed for this operation is missing."""


class CancelledError(LandFusionError):
    """The user cancelled the operation."""
