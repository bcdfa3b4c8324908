"""A model file selector that shows the chosen model's card below it (Processing dialogs).

Used by the algorithms that apply a model (classifyraster, cnnclassify) through the parameter
metadata ``{"widget_wrapper": {"class": "<package>.ui.model_card_widget.ModelCardWidgetWrapper"}}``.
The class is named by its dotted path, so qgis_process never imports this module. In the batch
and modeler dialogs the plain file widget of QGIS is kept.
"""

import html
import os

from processing.gui.wrappers import (DIALOG_STANDARD, FileWidgetWrapper, WidgetWrapper)
from qgis.core import NULL
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..core.models.format import TASK_NAMES
from ..core.models.reading import read_model

_ERROR_STYLE = "color:#a40000"


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def model_summary_html(path: str, empty_text: str = "") -> tuple:
    """Returns ``(html, ok)``: a short card of the model at ``path``, or an error line.

    Never raises: an unreadable, foreign or missing file gives ``ok=False`` and a line that
    names the problem.
    """
    path = (path or "").strip()
    if not path:
        return (f"<span style='color:#666'>{_e(empty_text)}</span>" if empty_text else "", False)
    if not os.path.isfile(path):
        return (f"<span style='{_ERROR_STYLE}'>No such file: {_e(path)}</span>", False)
    try:
        card = read_model(path)
    except Exception as error:  # any failure becomes the error line, never a traceback
        message = str(error) or error.__class__.__name__
        return (f"<span style='{_ERROR_STYLE}'>Not a usable LandFusion model: {_e(message)}"
                f"</span>", False)
    name = card.name or os.path.basename(path)
    lines = [f"<b>{_e(name)}</b>: {_e(TASK_NAMES.get(card.task, card.task))} ({_e(card.task)})"]
    if card.description:
        lines.append(f"<span style='color:#444'>{_e(card.description)}</span>")
    bands = ", ".join(f"{i + 1}&nbsp;{_e(card.band_description(i))}"
                      for i in range(card.band_count))
    lines.append(f"Bands in order: {bands}")
    classes = " ".join(
        f"<span style='background-color:{c.hex()};color:{c.hex()}'>&#9632;&#9632;</span>"
        f"&nbsp;{c.value}&nbsp;{_e(c.name)}" for c in card.classes)
    lines.append(f"Classes: {classes}")
    scores = [(k, v) for k, v in card.metrics.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if scores:
        lines.append("Validation: " + ", ".join(
            f"{_e(k.replace('_', ' '))} {v:.3g}" for k, v in scores))
    else:
        lines.append("<span style='color:#666'>Validation: no scores stored</span>")
    return "<br>".join(lines), True


class ModelCardWidget(QWidget):
    """A file selector for a model with a short card of the chosen model below it."""

    pathChanged = pyqtSignal(str)  # noqa: N815 (Qt naming)

    def __init__(self, file_filter: str = "", empty_text: str = "", parent=None):
        super().__init__(parent)
        self.empty_text = empty_text
        self.file_widget = QgsFileWidget()
        self.file_widget.setStorageMode(QgsFileWidget.GetFile)
        self.file_widget.setFilter(file_filter or "ONNX models (*.onnx);;All files (*.*)")
        self.card_label = QLabel()
        self.card_label.setWordWrap(True)
        self.card_label.setTextFormat(Qt.RichText)
        self.card_label.setObjectName("modelCard")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.file_widget)
        layout.addWidget(self.card_label)
        self.ok = False
        self.file_widget.fileChanged.connect(self._changed)
        self._update("")

    def path(self) -> str:
        """The chosen file path ('' when none)."""
        return self.file_widget.filePath().strip()

    def setPath(self, path: str):  # noqa: N802 (Qt naming)
        """Sets the file path and refreshes the card."""
        self.file_widget.setFilePath(path or "")
        self._update(self.path())

    def cardText(self) -> str:  # noqa: N802 (Qt naming)
        """The card as plain text (what the user reads)."""
        from qgis.PyQt.QtGui import QTextDocument

        document = QTextDocument()
        document.setHtml(self.card_label.text())
        return document.toPlainText().replace("\xa0", " ")

    def _changed(self, path):
        self._update(path)
        self.pathChanged.emit(self.path())

    def _update(self, path):
        text, self.ok = model_summary_html(path, self.empty_text)
        self.card_label.setText(text)
        self.card_label.setVisible(bool(text))


class ModelCardWidgetWrapper(FileWidgetWrapper):
    """Processing widget wrapper: the model card widget in the algorithm dialog, QGIS's plain
    file widget in the batch and modeler dialogs.

    Extra metadata keys: ``empty_text`` (shown when no file is chosen).
    """

    def __init__(self, param, dialog, row=0, col=0, **kwargs):
        # FileWidgetWrapper.__init__ only adds a deprecation warning about itself.
        WidgetWrapper.__init__(self, param, dialog, row, col, **kwargs)

    def createWidget(self, empty_text="", **kwargs):  # noqa: N802 (QGIS API name)
        """The card widget for the algorithm dialog, QGIS's file widget elsewhere."""
        if self.dialogType != DIALOG_STANDARD:
            return super().createWidget()
        param = self.parameterDefinition()
        extension = param.extension()
        file_filter = (f"{extension.upper()} files (*.{extension});;All files (*.*)"
                       if extension else param.fileFilter())
        widget = ModelCardWidget(file_filter, self.tr(empty_text) if empty_text else "")
        widget.pathChanged.connect(lambda _path: self.widgetValueHasChanged.emit(self))
        return widget

    def setValue(self, value):  # noqa: N802 (QGIS API name)
        """Sets the path shown (and its card)."""
        if self.dialogType != DIALOG_STANDARD:
            return super().setValue(value)
        self.widget.setPath("" if value is None or value == NULL else str(value))
        return None

    def value(self):
        """The chosen path, or None when empty."""
        if self.dialogType != DIALOG_STANDARD:
            return super().value()
        return self.widget.path() or None
