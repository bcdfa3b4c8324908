"""Spectral indices for Sentinel-2 reflectance, and a safe evaluator for custom expressions.

Every index works on surface (or top-of-atmosphere) reflectance in [0, 1] and is defined once
here; the spectral-index algorithm and the co-registration stack both use these definitions.
Division by zero, square roots of negative numbers and other undefined values become invalid
pixels (written as nodata), never inf or NaN.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np

from ..errors import InputError

Bands = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class SpectralIndex:
    """One spectral index: its bands, formula, reference and implementation."""

    name: str
    title: str
    bands: tuple
    formula: str
    reference: str
    #: ``compute(reflectance, params, out)``: the index, its last step written into ``out``
    #: (a float32 array of the bands' shape) when given.
    compute: Callable[[Bands, Mapping[str, float], Optional[np.ndarray]], np.ndarray] = field(
        repr=False)


def _normalised_difference(a: str, b: str):
    def compute(r: Bands, _params, out=None) -> np.ndarray:
        return np.divide(r[a] - r[b], r[a] + r[b], out=out)

    return compute


def _savi(r: Bands, params, out=None) -> np.ndarray:
    soil = params.get("L", 0.5)
    return np.divide((1.0 + soil) * (r["B08"] - r["B04"]), r["B08"] + r["B04"] + soil, out=out)


def _evi(r: Bands, _params, out=None) -> np.ndarray:
    return np.divide(2.5 * (r["B08"] - r["B04"]),
                     r["B08"] + 6.0 * r["B04"] - 7.5 * r["B02"] + 1.0, out=out)


def _bai(r: Bands, _params, out=None) -> np.ndarray:
    return np.divide(1.0, (0.1 - r["B04"]) ** 2 + (0.06 - r["B08"]) ** 2, out=out)


def _bais2(r: Bands, _params, out=None) -> np.ndarray:
    red_edge = np.sqrt(r["B06"] * r["B07"] * r["B8A"] / r["B04"])
    swir = (r["B12"] - r["B8A"]) / np.sqrt(r["B12"] + r["B8A"]) + 1.0
    return np.multiply(1.0 - red_edge, swir, out=out)


def _bsi(r: Bands, _params, out=None) -> np.ndarray:
    bright = r["B11"] + r["B04"]
    veg = r["B08"] + r["B02"]
    return np.divide(bright - veg, bright + veg, out=out)


INDICES: Dict[str, SpectralIndex] = {
    index.name: index
    for index in (
        SpectralIndex(
            "NDVI", "Normalised Difference Vegetation Index", ("B08", "B04"),
            "(B08 - B04) / (B08 + B04)",
            "Rouse, J.W. et al. (1974). Monitoring vegetation systems in the Great Plains with "
            "ERTS. NASA SP-351, 309-317.",
            _normalised_difference("B08", "B04"),
        ),
        SpectralIndex(
            "SAVI", "Soil-Adjusted Vegetation Index", ("B08", "B04"),
            "(1 + L) (B08 - B04) / (B08 + B04 + L), L = 0.5 by default",
            "Huete, A.R. (1988). A soil-adjusted vegetation index (SAVI). Remote Sensing of "
            "Environment 25(3), 295-309.",
            _savi,
        ),
        SpectralIndex(
            "BAI", "Burned Area Index (Chuvieco)", ("B04", "B08"),
            "1 / ((0.1 - B04)^2 + (0.06 - B08)^2)",
            "Chuvieco, E., Martin, M.P., Palacios, A. (2002). Assessment of different spectral "
            "indices in the red-near-infrared spectral domain for burned land discrimination. "
            "International Journal of Remote Sensing 23(23), 5103-5110.",
            _bai,
        ),
        SpectralIndex(
            "BAIS2", "Burned Area Index for Sentinel-2", ("B04", "B06", "B07", "B8A", "B12"),
            "(1 - sqrt(B06 B07 B8A / B04)) ((B12 - B8A) / sqrt(B12 + B8A) + 1)",
            "Filipponi, F. (2018). BAIS2: Burned Area Index for Sentinel-2. Proceedings 2(7), "
            "364 (2nd International Electronic Conference on Remote Sensing).",
            _bais2,
        ),
        SpectralIndex(
            "NDWI", "Normalised Difference Water Index (McFeeters, open water)", ("B03", "B08"),
            "(B03 - B08) / (B03 + B08)",
            "McFeeters, S.K. (1996). The use of the Normalized Difference Water Index (NDWI) in "
            "the delineation of open water features. International Journal of Remote Sensing "
            "17(7), 1425-1432.",
            _normalised_difference("B03", "B08"),
        ),
        SpectralIndex(
            "NDMI", "Normalised Difference Moisture Index (Gao's NDWI, vegetation water)",
            ("B08", "B11"),
            "(B08 - B11) / (B08 + B11)",
            "Gao, B.-C. (1996). NDWI - A normalized difference water index for remote sensing of "
            "vegetation liquid water from space. Remote Sensing of Environment 58(3), 257-266.",
            _normalised_difference("B08", "B11"),
        ),
        SpectralIndex(
            "MNDWI", "Modified Normalised Difference Water Index", ("B03", "B11"),
            "(B03 - B11) / (B03 + B11)",
            "Xu, H. (2006). Modification of normalised difference water index (NDWI) to enhance "
            "open water features in remotely sensed imagery. International Journal of Remote "
            "Sensing 27(14), 3025-3033.",
            _normalised_difference("B03", "B11"),
        ),
        SpectralIndex(
            "NDBI", "Normalised Difference Built-up Index", ("B11", "B08"),
            "(B11 - B08) / (B11 + B08)",
            "Zha, Y., Gao, J., Ni, S. (2003). Use of normalized difference built-up index in "
            "automatically mapping urban areas from TM imagery. International Journal of Remote "
            "Sensing 24(3), 583-594.",
            _normalised_difference("B11", "B08"),
        ),
        SpectralIndex(
            "EVI", "Enhanced Vegetation Index", ("B08", "B04", "B02"),
            "2.5 (B08 - B04) / (B08 + 6 B04 - 7.5 B02 + 1)",
            "Huete, A. et al. (2002). Overview of the radiometric and biophysical performance of "
            "the MODIS vegetation indices. Remote Sensing of Environment 83(1-2), 195-213.",
            _evi,
        ),
        SpectralIndex(
            "NBR", "Normalised Burn Ratio", ("B08", "B12"),
            "(B08 - B12) / (B08 + B12)",
            "Key, C.H., Benson, N.C. (2006). Landscape assessment: ground measure of severity, "
            "the Composite Burn Index; and remote sensing of severity, the Normalized Burn Ratio. "
            "USDA Forest Service RMRS-GTR-164-CD, LA 1-51.",
            _normalised_difference("B08", "B12"),
        ),
        SpectralIndex(
            "BSI", "Bare Soil Index", ("B11", "B04", "B08", "B02"),
            "((B11 + B04) - (B08 + B02)) / ((B11 + B04) + (B08 + B02))",
            "Rikimaru, A., Roy, P.S., Miyatake, S. (2002). Tropical forest cover density mapping. "
            "Tropical Ecology 43(1), 39-47.",
            _bsi,
        ),
        SpectralIndex(
            "NDRE", "Normalised Difference Red Edge index", ("B08", "B05"),
            "(B08 - B05) / (B08 + B05)",
            "Gitelson, A., Merzlyak, M.N. (1994). Spectral reflectance changes associated with "
            "autumn senescence of Aesculus hippocastanum L. and Acer platanoides L. leaves. "
            "Journal of Plant Physiology 143(3), 286-292.",
            _normalised_difference("B08", "B05"),
        ),
    )
}

#: The four indices of the Rouen S1/S2 fusion study, the default selection.
DEFAULT_INDICES = ("NDVI", "SAVI", "BAI", "NDWI")


def evaluate_index(name: str, reflectance: Bands, params: Mapping[str, float] | None = None,
                   out: Optional[np.ndarray] = None):
    """Computes one index on float32 reflectance arrays.

    Args:
        out: float32 array of the bands' shape to write the values into (saves a copy).

    Returns:
        ``(values, valid)``: float32 values (``out`` when given) and a boolean array that is
        False where the index is undefined (zero denominator, negative square root, ...).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        values = INDICES[name].compute(reflectance, params or {}, out)
    return _finite(values)


def _finite(values) -> tuple:
    values = np.asarray(values, dtype=np.float32)
    valid = np.isfinite(values)
    return values, valid


# ---------------------------------------------------------------------------------------------
# Custom expressions
# ---------------------------------------------------------------------------------------------

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS = {
    "sqrt": np.sqrt, "abs": np.abs, "log": np.log, "log10": np.log10, "exp": np.exp,
    "min": np.minimum, "max": np.maximum,
}
_MAX_EXPRESSION_LENGTH = 500


class Expression:
    """A custom index over named bands, parsed once and evaluated per block.

    Only numbers, band names (``B02``, ``B8A``, also ``B2``), ``+ - * / **``, parentheses and the
    functions sqrt, abs, log, log10, exp, min and max are allowed; nothing is passed to Python's
    ``eval``.
    """

    def __init__(self, text: str):
        self.text = (text or "").strip()
        if not self.text:
            raise InputError("The custom expression is empty.")
        if len(self.text) > _MAX_EXPRESSION_LENGTH:
            raise InputError(
                f"The custom expression is longer than {_MAX_EXPRESSION_LENGTH} characters."
            )
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as exc:
            raise InputError(
                f"The custom expression '{self.text}' is not valid: {exc.msg} at character "
                f"{exc.offset}. Example of a valid expression: (B08 - B04) / (B08 + B04)."
            ) from exc
        self._tree = tree.body
        self.bands = tuple(sorted(self._collect(self._tree)))

    def _collect(self, node) -> set:
        from ..sensors.bands import is_s2_band_name, normalise_s2_band

        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return set()
        if isinstance(node, ast.Name):
            band = normalise_s2_band(node.id) if is_s2_band_name(node.id) else None
            if band is None:
                raise InputError(
                    f"'{node.id}' in the custom expression is not a Sentinel-2 band name "
                    "(use B02, B03, B04, B08, B8A, ...)."
                )
            return {band}
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._collect(node.left) | self._collect(node.right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return self._collect(node.operand)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and len(node.args) == (2 if node.func.id in ("min", "max") else 1)
        ):
            return set().union(*(self._collect(a) for a in node.args))
        shown = ast.get_source_segment(self.text, node) or type(node).__name__
        raise InputError(
            f"'{shown}' is not allowed in a custom expression. Use band names, numbers, "
            "+ - * / ** and the functions " + ", ".join(sorted(_FUNCTIONS)) + "."
        )

    def evaluate(self, reflectance: Bands) -> tuple:
        """Returns ``(values, valid)`` like :func:`evaluate_index`."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = self._eval(self._tree, reflectance)
        values = np.broadcast_to(values, next(iter(reflectance.values())).shape)
        return _finite(values)

    def _eval(self, node, r: Bands):
        from ..sensors.bands import normalise_s2_band

        if isinstance(node, ast.Constant):
            return np.float32(node.value)
        if isinstance(node, ast.Name):
            return r[normalise_s2_band(node.id)]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, r), self._eval(node.right, r))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, r))
        return _FUNCTIONS[node.func.id](*(self._eval(a, r) for a in node.args))


def needed_bands(names: Sequence[str], expression: Expression | None = None) -> list:
    """Returns the sorted set of bands the chosen indices and expression need."""
    bands = set()
    for name in names:
        bands.update(INDICES[name].bands)
    if expression is not None:
        bands.update(expression.bands)
    return sorted(bands)
