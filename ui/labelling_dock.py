"""The reference-labelling dock: step through a stratifiedsample output point by point, label
each with the map's class list (click or key), save as you go, then run the accuracy report.

Labelling is blind: the dock never shows the map class of a point (an interpreter who sees it
tends to agree with it, which inflates accuracy)."""

import math

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsDockWidget, QgsFieldComboBox, QgsMapLayerComboBox, QgsVertexMarker
from qgis.PyQt.QtCore import Qt, QVariant
from qgis.PyQt.QtGui import QColor, QKeySequence
from qgis.PyQt.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QShortcut,
    QVBoxLayout,
    QWidget,
)

REFERENCE_FIELD = "reference"


def is_null(value):
    """Tells whether an attribute value is empty (None, a NULL QVariant or NaN)."""
    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return True
    return isinstance(value, float) and math.isnan(value)
KEYS = "1234567890QWERTYUIOP"


def classes_of_map(raster_layer):
    """Returns [(value, name, colour hex)] from a LandFusion class raster, or []."""
    if raster_layer is None:
        return []
    try:
        from ..core.io.classmap import read_class_styling

        return [(c.value, c.name, c.hex()) for c in read_class_styling(raster_layer.source())]
    except Exception:  # not a LandFusion class raster: fall back to the renderer's classes
        renderer = raster_layer.renderer()
        if renderer is not None and hasattr(renderer, "classes"):
            return [(int(c.value), c.label or str(int(c.value)), c.color.name())
                    for c in renderer.classes()]
        return []


def classes_of_sample(layer):
    """Returns [(value, name, '')] from a sample's map_class/map_name fields."""
    names = layer.fields().names()
    if "map_class" not in names:
        return []
    found = {}
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
    for feature in layer.getFeatures(request):
        value = feature["map_class"]
        if not is_null(value):
            label = feature["map_name"] if "map_name" in names else None
            found[int(value)] = str(label) if not is_null(label) and label else str(int(value))
    return [(v, n, "") for v, n in sorted(found.items())]


class LabellingDock(QgsDockWidget):
    """Labels the points of a stratified sample one by one and runs the accuracy report."""

    def __init__(self, iface, parent=None):
        """Builds the dock for the QGIS interface ``iface``."""
        super().__init__("LandFusion reference labelling", parent)
        self.setObjectName("LandFusionLabellingDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.layer = None
        self.ids = []
        self.position = 0
        self.classes = []
        self.class_buttons = []
        self.shortcuts = []
        self.marker = None
        body = QWidget()
        layout = QVBoxLayout(body)
        grid = QGridLayout()
        self.sample_combo = QgsMapLayerComboBox()
        self.sample_combo.setObjectName("sampleCombo")
        self.sample_combo.setFilters(QgsMapLayerProxyModel.PointLayer)
        self.sample_combo.setAllowEmptyLayer(True)
        self.sample_combo.setLayer(None)
        self.open_button = QPushButton("Open...")
        self.open_button.setToolTip("Open a landfusion:stratifiedsample output (GeoPackage)")
        self.field_combo = QgsFieldComboBox()
        self.field_combo.setObjectName("referenceFieldCombo")
        self.map_combo = QgsMapLayerComboBox()
        self.map_combo.setObjectName("mapCombo")
        self.map_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.map_combo.setAllowEmptyLayer(True)
        self.map_combo.setLayer(None)
        self.background_combo = QgsMapLayerComboBox()
        self.background_combo.setObjectName("backgroundCombo")
        self.background_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.background_combo.setAllowEmptyLayer(True)
        self.background_combo.setLayer(None)
        self.window_spin = QDoubleSpinBox()
        self.window_spin.setRange(10, 100000)
        self.window_spin.setValue(300)
        self.window_spin.setSuffix(" m")
        self.window_spin.setToolTip("Width of the view around each point")
        for row, (label, widget) in enumerate((
                ("Sample points", self.sample_combo), ("Reference field", self.field_combo),
                ("Map (class list)", self.map_combo), ("Background", self.background_combo),
                ("View width", self.window_spin))):
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(widget, row, 1)
        grid.addWidget(self.open_button, 0, 2)
        layout.addLayout(grid)

        self.position_label = QLabel("No sample loaded")
        self.position_label.setObjectName("positionLabel")
        layout.addWidget(self.position_label)
        self.progress = QProgressBar()
        self.progress.setObjectName("labelProgress")
        self.progress.setFormat("%v of %m labelled")
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.class_grid = QGridLayout()
        layout.addLayout(self.class_grid)
        nav = QHBoxLayout()
        self.previous_button = QPushButton("< Previous")
        self.next_button = QPushButton("Next >")
        self.unlabelled_button = QPushButton("Next unlabelled")
        self.clear_button = QPushButton("Clear label")
        for button in (self.previous_button, self.next_button, self.unlabelled_button,
                       self.clear_button):
            nav.addWidget(button)
        layout.addLayout(nav)
        self.report_button = QPushButton("Accuracy report...")
        self.report_button.setObjectName("accuracyReportButton")
        self.report_button.setToolTip("Runs landfusion:accuracyreport with these labels "
                                      "(stratified design)")
        layout.addWidget(self.report_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.setWidget(body)

        self.sample_combo.layerChanged.connect(self.set_sample)
        self.map_combo.layerChanged.connect(lambda _: self.load_classes())
        self.field_combo.fieldChanged.connect(lambda _: self.show_current())
        self.open_button.clicked.connect(self.open_sample)
        self.previous_button.clicked.connect(lambda: self.go(self.position - 1))
        self.next_button.clicked.connect(lambda: self.go(self.position + 1))
        self.unlabelled_button.clicked.connect(self.next_unlabelled)
        self.clear_button.clicked.connect(lambda: self.label(None))
        self.report_button.clicked.connect(self.run_accuracy_report)
        for key, slot in (("Right", lambda: self.go(self.position + 1)),
                          ("Left", lambda: self.go(self.position - 1))):
            self._shortcut(key, slot)
        self.show_current()

    def _shortcut(self, key, slot):
        shortcut = QShortcut(QKeySequence(key), self)
        shortcut.setContext(Qt.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)
        self.shortcuts.append(shortcut)
        return shortcut

    # -- loading --------------------------------------------------------------------------------
    def open_sample(self):
        """Asks for a sample file and adds it to the project."""
        path, _ = QFileDialog.getOpenFileName(self, "Open a stratified sample", "",
                                              "GeoPackage (*.gpkg);;All files (*)")
        if path:
            self.load_sample_file(path)

    def load_sample_file(self, path):
        """Adds the sample at ``path`` to the project and selects it; returns the layer."""
        layer = QgsVectorLayer(path, "reference sample", "ogr")
        if not layer.isValid():
            self.status.setText(f"Cannot open {path} as a point layer.")
            return None
        QgsProject.instance().addMapLayer(layer)
        self.sample_combo.setLayer(layer)
        return layer

    def set_sample(self, layer):
        """Uses ``layer`` (points) and orders its points by sample_id (random order)."""
        self.layer = layer if isinstance(layer, QgsVectorLayer) else None
        self.field_combo.setLayer(self.layer)
        self.ids = []
        if self.layer is not None:
            names = self.layer.fields().names()
            if REFERENCE_FIELD in names:
                self.field_combo.setField(REFERENCE_FIELD)
            order = "sample_id" if "sample_id" in names else None
            request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
            features = list(self.layer.getFeatures(request))
            if order:
                features.sort(key=lambda f: (is_null(f[order]), 0 if is_null(f[order]) else f[order]))
            self.ids = [f.id() for f in features]
        self.load_classes()
        self.go(0)

    def load_classes(self):
        """Builds one button per class of the map (or of the sample's map classes)."""
        classes = classes_of_map(self.map_combo.currentLayer())
        if not classes and self.layer is not None:
            classes = classes_of_sample(self.layer)
        self.classes = classes
        for button in self.class_buttons:
            self.class_grid.removeWidget(button)
            button.setParent(None)  # off the dock now, not at the next event loop turn
            button.deleteLater()
        self.class_buttons = []
        for shortcut in self.shortcuts[2:]:
            shortcut.setEnabled(False)
            shortcut.deleteLater()
        self.shortcuts = self.shortcuts[:2]
        for i, (value, name, colour) in enumerate(classes):
            key = KEYS[i] if i < len(KEYS) else ""
            button = QPushButton(f"{key}  {name}" if key else name)
            button.setObjectName(f"classButton{value}")
            button.setToolTip(f"class value {value}" + (f", key {key}" if key else ""))
            if colour:
                text = "black" if QColor(colour).lightness() > 128 else "white"
                button.setStyleSheet(f"QPushButton {{ background-color: {colour}; color: {text}; }}"
                                     f"QPushButton:checked {{ border: 3px solid {text}; }}")
            button.setCheckable(True)
            button.clicked.connect(lambda _, v=value: self.label(v))
            self.class_grid.addWidget(button, i // 2, i % 2)
            self.class_buttons.append(button)
            if key:
                self._shortcut(key, lambda v=value: self.label(v))
        self.show_current()

    # -- stepping and labelling -----------------------------------------------------------------
    def field(self):
        """Returns the reference field name."""
        return self.field_combo.currentField() or REFERENCE_FIELD

    def current_feature(self):
        """Returns the current sample point, or None."""
        if self.layer is None or not self.ids:
            return None
        return self.layer.getFeature(self.ids[self.position])

    def go(self, position):
        """Moves to point ``position`` (clamped), zooms to it and shows its label."""
        if not self.ids:
            self.position = 0
            self.show_current()
            return
        self.position = max(0, min(len(self.ids) - 1, position))
        self.zoom_to_current()
        self.show_current()

    def next_unlabelled(self):
        """Moves to the next point without a label (wrapping around); False when all are done."""
        field = self.field()
        for step in range(1, len(self.ids) + 1):
            position = (self.position + step) % len(self.ids)
            value = self.layer.getFeature(self.ids[position])[field]
            if is_null(value):
                self.go(position)
                return True
        self.status.setText("Every point is labelled: run the accuracy report.")
        return False

    def zoom_to_current(self):
        """Centres the canvas on the current point, the background layer made visible."""
        feature = self.current_feature()
        if feature is None or not feature.hasGeometry():
            return
        point = feature.geometry().asPoint()
        canvas_crs = self.canvas.mapSettings().destinationCrs()
        if canvas_crs.isValid() and canvas_crs != self.layer.crs():
            point = QgsCoordinateTransform(self.layer.crs(), canvas_crs,
                                           QgsProject.instance()).transform(point)
        background = self.background_combo.currentLayer()
        if background is not None:
            node = QgsProject.instance().layerTreeRoot().findLayer(background.id())
            if node is not None:
                node.setItemVisibilityChecked(True)
        half = self.window_spin.value() / 2.0
        if canvas_crs.isGeographic():
            half /= 111_320.0
        self.canvas.setExtent(QgsRectangle(point.x() - half, point.y() - half,
                                           point.x() + half, point.y() + half))
        if self.marker is None:
            self.marker = QgsVertexMarker(self.canvas)
            self.marker.setIconType(QgsVertexMarker.ICON_CROSS)
            self.marker.setIconSize(24)
            self.marker.setPenWidth(3)
            self.marker.setColor(QColor("#ff00ff"))
        self.marker.setCenter(QgsPointXY(point))
        self.canvas.refresh()

    def label(self, value):
        """Writes ``value`` (None clears it) into the current point and saves; moves on."""
        feature = self.current_feature()
        if feature is None:
            return False
        index = self.layer.fields().indexOf(self.field())
        if index < 0:
            self.status.setText(f"The sample has no field '{self.field()}'.")
            return False
        if self.layer.isEditable():
            ok = self.layer.changeAttributeValue(feature.id(), index, value)
        else:  # saved at once: nothing is lost if QGIS closes
            ok = self.layer.dataProvider().changeAttributeValues({feature.id(): {index: value}})
            self.layer.triggerRepaint()
        if not ok:
            self.status.setText(f"Could not save the label of point {self.position + 1}.")
            return False
        if value is not None and self.position < len(self.ids) - 1:
            self.go(self.position + 1)
        else:
            self.show_current()
        return True

    def labelled_count(self):
        """Returns how many points carry a label."""
        if self.layer is None:
            return 0
        field = self.field()
        if field not in self.layer.fields().names():
            return 0
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
        request.setSubsetOfAttributes([field], self.layer.fields())
        return sum(1 for f in self.layer.getFeatures(request) if not is_null(f[field]))

    def show_current(self):
        """Updates the position, the progress and the checked class button."""
        feature = self.current_feature()
        total = len(self.ids)
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(self.labelled_count())
        self.progress.setFormat("%v of %m labelled" if total else "No sample loaded")
        if feature is None:
            self.position_label.setText("No sample loaded" if self.layer is None
                                        else "The sample has no points")
            return
        value = feature[self.field()] if self.field() in self.layer.fields().names() else None
        labelled = not is_null(value)
        sample_id = feature["sample_id"] if "sample_id" in self.layer.fields().names() \
            else feature.id()
        names = {v: n for v, n, _ in self.classes}
        self.position_label.setText(
            f"Point {self.position + 1} of {total} (sample_id {sample_id}): "
            + (f"labelled {names.get(int(value), int(value))}" if labelled else "not labelled"))
        for button, (class_value, _, _) in zip(self.class_buttons, self.classes):
            button.setChecked(labelled and int(value) == class_value)

    # -- accuracy report ------------------------------------------------------------------------
    def report_parameters(self):
        """Returns the accuracy-report parameters for this sample and map."""
        return {"CLASSIFICATION": self.map_combo.currentLayer(), "REFERENCE": self.layer,
                "CLASS_FIELD": self.field(), "SAMPLING_DESIGN": 0}

    def run_accuracy_report(self):
        """Opens landfusion:accuracyreport filled in with the map, the sample and its field."""
        if self.layer is None or self.map_combo.currentLayer() is None:
            self.status.setText("Choose the sample and the map (classification) first.")
            return
        missing = len(self.ids) - self.labelled_count()
        if missing:
            self.status.setText(f"{missing} point(s) are not labelled yet; the report uses the "
                                "labelled ones only.")
        import processing

        processing.execAlgorithmDialog("landfusion:accuracyreport", self.report_parameters())

    def close_tools(self):
        """Removes the point marker (plugin unload)."""
        if self.marker is not None:
            self.canvas.scene().removeItem(self.marker)
            self.marker = None
