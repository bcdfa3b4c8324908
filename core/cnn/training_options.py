"""The options of one ``landfusion:traincnn`` run, and PyTorch, which training needs.

PyTorch is optional: it is imported only while training; without it :func:`import_torch` raises a
:class:`DependencyError` saying how to install it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from ..errors import DependencyError, InputError
from ..io.classmap import ClassInfo

TORCH_VERSION = "2.13.0"


def install_torch_message() -> str:
    """How to install PyTorch (its CPU build), for the missing-torch error."""
    return (
        "Training CNNs needs PyTorch, which is not installed in the Python that runs QGIS. "
        f"Install its CPU build (no GPU needed): python3 -m pip install --user "
        f"\"torch=={TORCH_VERSION}\" --index-url https://download.pytorch.org/whl/cpu (on "
        "Debian 12 add "
        "--break-system-packages, or in a LandFusion checkout run 'make setup', which installs it "
        "into .venv), then restart QGIS. Running trained models (Classify raster with a CNN) "
        "needs no PyTorch.")


def import_torch():
    """Imports PyTorch or raises :class:`DependencyError` with install instructions."""
    try:
        import torch
    except ImportError as exc:
        raise DependencyError(install_torch_message()) from exc
    return torch


@dataclass
class TrainingOptions:
    """Everything one ``traincnn`` run needs; see :func:`core.cnn.training.train_cnn`."""

    output_model: str
    output_report: Optional[str] = None
    task: str = "segmentation"
    architecture: str = ""
    inputs: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    label_nodata: Optional[float] = None
    training: Optional[str] = None
    class_field: Optional[str] = None
    patch_folder: Optional[str] = None
    bands: Optional[list] = None
    input_band_names: Optional[list] = None
    patch_size: int = 64
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    augment: bool = True
    seed: int = 42
    validation: str = "inputs"
    validation_fraction: float = 0.2
    validation_block: int = 0
    patience: int = 8
    width: int = 16
    threads: int = 0
    device: str = "auto"
    class_names: Optional[dict] = None
    model_name: str = ""
    description: str = ""

    def settings(self) -> dict:
        """The settings as written in the report and the model card."""
        return {k: v for k, v in asdict(self).items() if v not in (None, [], "")}

    def clean_lists(self) -> None:
        """Turns comma-separated band names into lists (in place); None stays None."""
        self.bands = _clean_list(self.bands)
        self.input_band_names = _clean_list(self.input_band_names)
        self.inputs = list(self.inputs or [])
        self.labels = list(self.labels or [])


def _clean_list(values) -> Optional[list]:
    if values is None:
        return None
    if isinstance(values, str):
        values = values.split(",")
    values = [str(v).strip() for v in values if str(v).strip()]
    return values or None


def parse_class_names(text) -> dict:
    """Parses ``"0:land:#d9c9a3,1:water:#1f78b4"`` (colour optional) into ``{value: (name,
    colour or None)}``.

    Raises:
        InputError: for an entry without a numeric value and a name.
    """
    if not text:
        return {}
    if isinstance(text, dict):
        return text
    result = {}
    for item in (p.strip() for p in str(text).split(",") if p.strip()):
        parts = [p.strip() for p in item.split(":")]
        try:
            value = int(parts[0])
        except ValueError:
            raise InputError(f"Class names must read value:name or value:name:#rrggbb, "
                             f"e.g. 0:land:#d9c9a3,1:water; got '{item}'.") from None
        if len(parts) < 2 or not parts[1]:
            raise InputError(f"Class names: '{item}' has no name (write value:name).")
        result[value] = (parts[1], parts[2] if len(parts) > 2 and parts[2] else None)
    return result


def name_classes(samples, names: dict) -> None:
    """Gives the samples' classes the names (and colours) of :func:`parse_class_names`."""
    from ..io.classmap import parse_color

    classes = []
    for c in samples.classes:
        if c.value in names:
            name, colour = names[c.value]
            classes.append(ClassInfo(c.value, name, parse_color(colour) if colour else c.color))
        else:
            classes.append(c)
    samples.classes = classes
