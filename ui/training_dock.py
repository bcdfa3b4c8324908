"""The training-data dock: a class manager, polygon drawing with the current class, counts per
class, and the spectral profile (mean ± std per band) of the polygon under the cursor."""

import json
import math

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsDistanceArea,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsColorButton, QgsDockWidget, QgsMapLayerComboBox, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import QPointF, QRectF, Qt, QVariant
from qgis.PyQt.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QPolygonF
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

CLASS_ID = "class_id"
CLASS_NAME = "class_name"
COLOR = "color"
#: Field names recognised in an existing layer (the first found is used), by role.
FIELD_CANDIDATES = {
    CLASS_ID: ("class_id", "classid", "cid", "class", "id_class", "code", "macroclass_id"),
    CLASS_NAME: ("class_name", "classname", "name", "label", "macroclass_name"),
    COLOR: ("color", "colour", "class_color", "class_colour"),
}
CLASSES_PROPERTY = "landfusion/classes"
#: Colours for new classes (ColorBrewer Set1/Dark2, readable on imagery).
PALETTE = ("#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3",
           "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99")
MAX_PROFILE_PIXELS = 1_000_000  # larger polygons are read decimated


def is_null(value):
    """Tells whether an attribute value is empty (None, a NULL QVariant or NaN)."""
    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return True
    return isinstance(value, float) and math.isnan(value)


def training_fields():
    """Returns the fields of a LandFusion training layer."""
    fields = QgsFields()
    fields.append(QgsField(CLASS_ID, QVariant.Int))
    fields.append(QgsField(CLASS_NAME, QVariant.String, len=80))
    fields.append(QgsField(COLOR, QVariant.String, len=9))
    return fields


def find_class_fields(layer):
    """Returns {role: field name} of the class id / name / colour fields ``layer`` has.

    The id field must be numeric; a role without a field is left out.
    """
    by_lower = {f.name().lower(): f for f in layer.fields()}
    found = {}
    for role, candidates in FIELD_CANDIDATES.items():
        for candidate in candidates:
            field = by_lower.get(candidate)
            if field is not None and (role != CLASS_ID or field.isNumeric()):
                found[role] = field.name()
                break
    return found


def create_training_layer(path, crs, name="training"):
    """Creates a GeoPackage polygon layer with class id, name and colour fields; returns it."""
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = name
    writer = QgsVectorFileWriter.create(path, training_fields(), QgsWkbTypes.MultiPolygon, crs,
                                        QgsProject.instance().transformContext(), options)
    if writer.hasError() != QgsVectorFileWriter.NoError:
        raise OSError(f"Cannot create {path}: {writer.errorMessage()}")
    del writer  # closes the file
    layer = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
    if not layer.isValid():
        raise OSError(f"Cannot open the new layer {path}")
    return layer


def polygon_profile(raster_layer, geometry, geometry_crs):
    """Returns (band names, means, stds, pixel count) of the raster inside ``geometry``.

    Reads only the polygon's bounding window (decimated above a million pixels) with GDAL,
    rasterises the polygon in memory and skips nodata.
    """
    import numpy as np
    from osgeo import gdal, ogr, osr

    if raster_layer.crs() != geometry_crs:
        geometry = QgsGeometry(geometry)
        geometry.transform(QgsCoordinateTransform(geometry_crs, raster_layer.crs(),
                                                  QgsProject.instance()))
    ds = gdal.Open(raster_layer.source())
    if ds is None:
        raise OSError(f"GDAL cannot open {raster_layer.source()}")
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    box = geometry.boundingBox()
    col0 = max(0, math.floor((box.xMinimum() - x0) / dx))
    col1 = min(ds.RasterXSize, math.ceil((box.xMaximum() - x0) / dx))
    row0 = max(0, math.floor((box.yMaximum() - y0) / dy))
    row1 = min(ds.RasterYSize, math.ceil((box.yMinimum() - y0) / dy))
    names = [ds.GetRasterBand(i).GetDescription() or f"Band {i}"
             for i in range(1, ds.RasterCount + 1)]
    if col1 <= col0 or row1 <= row0:
        return names, np.full(len(names), np.nan), np.full(len(names), np.nan), 0
    width, height = col1 - col0, row1 - row0
    step = max(1.0, math.sqrt(width * height / MAX_PROFILE_PIXELS))
    out_w, out_h = max(1, int(width / step)), max(1, int(height / step))
    mem = gdal.GetDriverByName("MEM").Create("", out_w, out_h, 1, gdal.GDT_Byte)
    mem.SetGeoTransform((x0 + col0 * dx, dx * width / out_w, 0, y0 + row0 * dy, 0,
                         dy * height / out_h))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(ds.GetProjection())
    mem.SetProjection(ds.GetProjection())
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("polygon", srs, ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(geometry.asWkt()))
    layer.CreateFeature(feature)
    gdal.RasterizeLayer(mem, [1], layer, burn_values=[1])
    inside = mem.ReadAsArray().astype(bool)
    if not inside.any():  # a polygon smaller than a pixel: take the pixels it touches
        gdal.RasterizeLayer(mem, [1], layer, burn_values=[1], options=["ALL_TOUCHED=TRUE"])
        inside = mem.ReadAsArray().astype(bool)
    means, stds, count = [], [], 0
    for i in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(i)
        data = band.ReadAsArray(col0, row0, width, height, buf_xsize=out_w,
                                buf_ysize=out_h).astype("float64")
        valid = inside & np.isfinite(data)
        if band.GetNoDataValue() is not None:
            valid &= data != band.GetNoDataValue()
        values = data[valid]
        count = max(count, int(values.size))
        means.append(values.mean() if values.size else np.nan)
        stds.append(values.std() if values.size else np.nan)
    return names, np.array(means), np.array(stds), count


class ProfilePlot(QWidget):
    """A small plot of mean ± standard deviation per band, drawn with QPainter."""

    def __init__(self, parent=None):
        """Starts empty."""
        super().__init__(parent)
        self.setObjectName("spectralProfilePlot")
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.names, self.means, self.stds = [], [], []
        self.color = QColor("#1f78b4")
        self.title = "Move the cursor over a training polygon"

    def set_profile(self, names, means, stds, color, title):
        """Shows one profile."""
        self.names, self.means, self.stds = list(names), list(means), list(stds)
        self.color, self.title = QColor(color), title
        self.update()

    def clear(self, title):
        """Shows only a message."""
        self.names, self.means, self.stds, self.title = [], [], [], title
        self.update()

    def paintEvent(self, event):  # noqa: N802 (Qt API name)
        """Draws the axes, the ± std band, the mean line and the band names."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        font = QFont(self.font())
        painter.setFont(font)
        metrics = painter.fontMetrics()
        painter.setPen(self.palette().text().color())
        painter.drawText(QRectF(4, 2, self.width() - 8, metrics.height()),
                         Qt.AlignLeft | Qt.AlignVCenter, self.title)
        finite = [(m, s) for m, s in zip(self.means, self.stds)
                  if m is not None and not math.isnan(m)]
        if not finite:
            return
        low = min(m - s for m, s in finite)
        high = max(m + s for m, s in finite)
        if high <= low:
            high, low = high + 1, low - 1
        left, top = metrics.horizontalAdvance("-0.000") + 10, metrics.height() + 8
        bottom = self.height() - metrics.height() - 8
        right = self.width() - max(12, metrics.horizontalAdvance(self.names[-1]) // 2 + 4)
        n = len(self.means)

        def x(i):
            return left + (right - left) * (i / max(1, n - 1) if n > 1 else 0.5)

        def y(v):
            return bottom - (bottom - top) * (v - low) / (high - low)

        axis = QPen(self.palette().mid().color())
        painter.setPen(axis)
        painter.drawLine(QPointF(left, top), QPointF(left, bottom))
        painter.drawLine(QPointF(left, bottom), QPointF(right, bottom))
        painter.setPen(self.palette().text().color())
        for value in (low, (low + high) / 2, high):
            painter.drawText(QRectF(0, y(value) - metrics.height() / 2, left - 4, metrics.height()),
                             Qt.AlignRight | Qt.AlignVCenter, f"{value:.3g}")
        band = QPolygonF()
        points = [(i, m, s) for i, (m, s) in enumerate(zip(self.means, self.stds))
                  if not math.isnan(m)]
        for i, m, s in points:
            band.append(QPointF(x(i), y(m + s)))
        for i, m, s in reversed(points):
            band.append(QPointF(x(i), y(m - s)))
        fill = QColor(self.color)
        fill.setAlpha(60)
        painter.setPen(Qt.NoPen)
        painter.setBrush(QBrush(fill))
        painter.drawPolygon(band)
        path = QPainterPath()
        for k, (i, m, _) in enumerate(points):
            (path.moveTo if k == 0 else path.lineTo)(QPointF(x(i), y(m)))
        painter.setBrush(Qt.NoBrush)
        painter.setPen(QPen(self.color, 2))
        painter.drawPath(path)
        for i, m, _ in points:
            painter.drawEllipse(QPointF(x(i), y(m)), 2.5, 2.5)
        painter.setPen(self.palette().text().color())
        every = max(1, math.ceil(n * metrics.horizontalAdvance("B8A ") / max(1, right - left)))
        for i, name in enumerate(self.names):
            if i % every == 0:
                painter.drawText(QRectF(x(i) - 30, bottom + 2, 60, metrics.height()),
                                 Qt.AlignHCenter | Qt.AlignTop, name)


class PolygonDrawTool(QgsMapTool):
    """Draws a polygon: left click adds a vertex, right click (or Enter) closes it, Backspace
    removes the last vertex, Esc discards it. ``finished(geometry)`` gets map coordinates."""

    def __init__(self, canvas, finished):
        """Calls ``finished(QgsGeometry)`` for each closed polygon."""
        super().__init__(canvas)
        self.finished = finished
        self.points = []
        self.rubber = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self.rubber.setStrokeColor(QColor(255, 0, 0, 200))
        self.rubber.setFillColor(QColor(255, 0, 0, 40))
        self.rubber.setWidth(2)
        self.setCursor(Qt.CrossCursor)

    def add_point(self, point):
        """Adds a vertex (map coordinates)."""
        self.points.append(QgsPointXY(point))
        self.rubber.addPoint(QgsPointXY(point), True)

    def finish(self):
        """Closes the polygon and hands it over; returns it (None with fewer than 3 vertices)."""
        geometry = None
        if len(self.points) >= 3:
            geometry = QgsGeometry.fromPolygonXY([self.points + [self.points[0]]])
            if not geometry.isGeosValid():
                geometry = geometry.makeValid()
            self.finished(geometry)
        self.reset()
        return geometry

    def reset(self):
        """Discards the polygon being drawn."""
        self.points = []
        self.rubber.reset(QgsWkbTypes.PolygonGeometry)

    def canvasReleaseEvent(self, event):  # noqa: N802 (QGIS API name)
        """Left click adds a vertex; right click closes the polygon."""
        if event.button() == Qt.LeftButton:
            self.add_point(event.mapPoint())
        elif event.button() == Qt.RightButton:
            self.finish()

    def canvasMoveEvent(self, event):  # noqa: N802 (QGIS API name)
        """Shows the next edge following the cursor."""
        if self.points:
            self.rubber.reset(QgsWkbTypes.PolygonGeometry)
            for point in self.points + [event.mapPoint()]:
                self.rubber.addPoint(QgsPointXY(point), False)
            self.rubber.show()

    def keyPressEvent(self, event):  # noqa: N802 (QGIS API name)
        """Esc discards, Backspace removes the last vertex, Enter closes."""
        if event.key() == Qt.Key_Escape:
            self.reset()
        elif event.key() in (Qt.Key_Backspace, Qt.Key_Delete) and self.points:
            points = self.points[:-1]
            self.reset()
            for point in points:
                self.add_point(point)
        elif event.key() in (Qt.Key_Return, Qt.Key_Enter):
            self.finish()

    def deactivate(self):
        """Drops the unfinished polygon when another tool is chosen."""
        self.reset()
        super().deactivate()


class TrainingDock(QgsDockWidget):
    """Training polygons with class id / name / colour: classes, drawing, counts, profiles."""

    COLUMNS = ("Id", "Class", "Colour", "Polygons", "Area (ha)")

    def __init__(self, iface, parent=None):
        """Builds the dock for the QGIS interface ``iface``."""
        super().__init__("LandFusion training data", parent)
        self.setObjectName("LandFusionTrainingDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.layer = None
        self.classes = {}  # id -> [name, colour hex]
        self.field_names = {CLASS_ID: CLASS_ID, CLASS_NAME: CLASS_NAME, COLOR: COLOR}
        self._filling = False
        body = QWidget()
        layout = QVBoxLayout(body)

        row = QHBoxLayout()
        row.addWidget(QLabel("Training layer"))
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setObjectName("trainingLayerCombo")
        self.layer_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.layer_combo.setAllowEmptyLayer(True)
        self.layer_combo.setLayer(None)
        row.addWidget(self.layer_combo, 1)
        self.new_button = QPushButton("New...")
        self.new_button.setToolTip("Create a GeoPackage training layer with class_id, "
                                   "class_name and color fields")
        row.addWidget(self.new_button)
        layout.addLayout(row)

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("classTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        layout.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add class")
        self.add_button.setObjectName("addClassButton")
        self.draw_button = QPushButton("Draw polygons")
        self.draw_button.setObjectName("drawButton")
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip("Left click: vertex; right click or Enter: close the polygon "
                                    "(saved with the selected class); Backspace: undo; Esc: discard")
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        buttons.addWidget(self.draw_button)
        layout.addLayout(buttons)

        row = QHBoxLayout()
        row.addWidget(QLabel("Profile raster"))
        self.raster_combo = QgsMapLayerComboBox()
        self.raster_combo.setObjectName("profileRasterCombo")
        self.raster_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.raster_combo.setAllowEmptyLayer(True)
        row.addWidget(self.raster_combo, 1)
        layout.addLayout(row)
        self.plot = ProfilePlot()
        layout.addWidget(self.plot, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.setWidget(body)

        self.tool = PolygonDrawTool(self.canvas, self.add_polygon)
        self._profile_cache = {}
        self.layer_combo.layerChanged.connect(self.set_layer)
        self.new_button.clicked.connect(self.new_layer)
        self.add_button.clicked.connect(lambda: self.add_class())
        self.draw_button.toggled.connect(self.toggle_drawing)
        self.table.itemChanged.connect(self._item_changed)
        self.raster_combo.layerChanged.connect(lambda _: self._profile_cache.clear())
        self.canvas.xyCoordinates.connect(self.show_profile_at)
        self.canvas.mapToolSet.connect(self._tool_changed)

    # -- layer and classes ----------------------------------------------------------------------
    def new_layer(self):
        """Asks for a file name and creates a training GeoPackage in the project CRS."""
        path, _ = QFileDialog.getSaveFileName(self, "New training layer", "training.gpkg",
                                              "GeoPackage (*.gpkg)")
        if path:
            if not path.lower().endswith(".gpkg"):
                path += ".gpkg"
            self.use_new_layer(path)

    def use_new_layer(self, path, crs=None):
        """Creates the GeoPackage at ``path`` (in the map's CRS unless told), adds it to the
        project and selects it."""
        for candidate in (crs, self.canvas.mapSettings().destinationCrs(),
                          QgsProject.instance().crs(), QgsCoordinateReferenceSystem("EPSG:4326")):
            if candidate is not None and candidate.isValid():
                crs = candidate
                break
        layer = create_training_layer(path, crs)
        QgsProject.instance().addMapLayer(layer)
        self.layer_combo.setLayer(layer)
        return layer

    def set_layer(self, layer):
        """Uses ``layer`` for training polygons (adds the class fields it lacks)."""
        if self.layer is not None:
            try:
                self.layer.featureAdded.disconnect(self._layer_edited)
                self.layer.featureDeleted.disconnect(self._layer_edited)
            except (TypeError, RuntimeError):
                pass
        self.layer = layer if isinstance(layer, QgsVectorLayer) else None
        self.classes = {}
        self.field_names = {CLASS_ID: CLASS_ID, CLASS_NAME: CLASS_NAME, COLOR: COLOR}
        if self.layer is not None:
            found = find_class_fields(self.layer)
            missing = [f for f in training_fields() if f.name() not in found
                       and f.name() not in self.layer.fields().names()]
            if missing:  # e.g. a layer of points or polygons without names or colours yet
                self.layer.dataProvider().addAttributes(missing)
                self.layer.updateFields()
            self.field_names.update(found)
            id_field, name_field, color_field = self._fields()
            stored = self.layer.customProperty(CLASSES_PROPERTY)
            if stored:
                for key, (name, color) in json.loads(stored).items():
                    self.classes[int(key)] = [name, color]
            request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
            request.setSubsetOfAttributes([id_field, name_field, color_field],
                                          self.layer.fields())
            for feature in self.layer.getFeatures(request):
                value = feature[id_field]
                if not is_null(value) and int(value) not in self.classes:
                    name, color = feature[name_field], feature[color_field]
                    self.classes[int(value)] = [
                        f"class {int(value)}" if is_null(name) or not name else str(name),
                        self._next_colour() if is_null(color) or not color else str(color)]
            self.layer.featureAdded.connect(self._layer_edited)
            self.layer.featureDeleted.connect(self._layer_edited)
        self._profile_cache.clear()
        if self.layer is not None and self.classes:
            self._style_layer()
        self.refresh()

    def _fields(self):
        """Returns the layer's (class id, class name, colour) field names."""
        return (self.field_names[CLASS_ID], self.field_names[CLASS_NAME],
                self.field_names[COLOR])

    def _next_colour(self):
        return PALETTE[len(self.classes) % len(PALETTE)]

    def add_class(self, name=None, color=None, class_id=None):
        """Adds a class (next free id, a palette colour); asks for the name when not given."""
        if self.layer is None:
            self.status.setText("Choose or create a training layer first.")
            return None
        if name is None:
            name, ok = QInputDialog.getText(self, "New class", "Class name:")
            if not ok or not name.strip():
                return None
        class_id = class_id if class_id is not None else max(self.classes, default=0) + 1
        if class_id in self.classes:
            raise ValueError(f"class id {class_id} is already used by {self.classes[class_id][0]}")
        self.classes[class_id] = [name.strip(), QColor(color or self._next_colour()).name()]
        self._store_classes()
        self.refresh()
        self.select_class(class_id)
        return class_id

    def rename_class(self, class_id, name):
        """Renames a class and the polygons that carry it."""
        self.classes[class_id][0] = name
        self._update_features(class_id, self.field_names[CLASS_NAME], name)

    def recolour_class(self, class_id, color):
        """Changes a class colour and the polygons that carry it."""
        self.classes[class_id][1] = QColor(color).name()
        self._update_features(class_id, self.field_names[COLOR], self.classes[class_id][1])

    def _update_features(self, class_id, field, value):
        index = self.layer.fields().indexOf(field)
        request = QgsFeatureRequest().setFilterExpression(
            f'"{self.field_names[CLASS_ID]}" = {int(class_id)}')
        request.setFlags(QgsFeatureRequest.NoGeometry)
        changes = {f.id(): {index: value} for f in self.layer.getFeatures(request)}
        if changes:
            if self.layer.isEditable():
                for fid, attributes in changes.items():
                    self.layer.changeAttributeValue(fid, index, attributes[index])
            else:
                self.layer.dataProvider().changeAttributeValues(changes)
        self._store_classes()
        self.refresh()

    def _store_classes(self):
        self.layer.setCustomProperty(CLASSES_PROPERTY, json.dumps(
            {str(k): v for k, v in sorted(self.classes.items())}))
        self._style_layer()

    def _style_layer(self):
        categories = []
        for class_id, (name, color) in sorted(self.classes.items()):
            symbol = QgsSymbol.defaultSymbol(self.layer.geometryType())
            fill = QColor(color)
            fill.setAlpha(90)
            symbol.setColor(fill)
            symbol.symbolLayer(0).setStrokeColor(QColor(color))
            categories.append(QgsRendererCategory(class_id, symbol, f"{class_id} {name}"))
        self.layer.setRenderer(QgsCategorizedSymbolRenderer(self.field_names[CLASS_ID], categories))
        self.layer.triggerRepaint()

    def current_class(self):
        """Returns the id of the selected class, or None."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return int(self.table.item(rows[0].row(), 0).text())

    def select_class(self, class_id):
        """Makes ``class_id`` the current class."""
        for row in range(self.table.rowCount()):
            if int(self.table.item(row, 0).text()) == class_id:
                self.table.selectRow(row)
                return

    def counts(self):
        """Returns {class id: (polygon count, area in hectares)} of the training layer."""
        result = {k: [0, 0.0] for k in self.classes}
        if self.layer is None:
            return {}
        area = QgsDistanceArea()
        area.setSourceCrs(self.layer.crs(), QgsProject.instance().transformContext())
        area.setEllipsoid(QgsProject.instance().ellipsoid() or "EPSG:7030")
        for feature in self.layer.getFeatures():
            value = feature[self.field_names[CLASS_ID]]
            if is_null(value):
                continue
            entry = result.setdefault(int(value), [0, 0.0])
            entry[0] += 1
            entry[1] += area.measureArea(feature.geometry()) / 10_000.0
        return {k: tuple(v) for k, v in result.items()}

    def refresh(self):
        """Refills the class table with names, colours and counts."""
        current = self.current_class()
        counts = self.counts()
        self._filling = True
        self.table.setRowCount(len(self.classes))
        for row, (class_id, (name, color)) in enumerate(sorted(self.classes.items())):
            id_item = QTableWidgetItem(str(class_id))
            id_item.setFlags(id_item.flags() & ~Qt.ItemIsEditable)
            self.table.setItem(row, 0, id_item)
            self.table.setItem(row, 1, QTableWidgetItem(name))
            button = QgsColorButton()
            button.setColor(QColor(color))
            button.setAllowOpacity(False)
            button.setToolTip("Change the class colour")
            button.colorChanged.connect(
                lambda c, cid=class_id: self.recolour_class(cid, c) if not self._filling else None)
            self.table.setCellWidget(row, 2, button)
            count, hectares = counts.get(class_id, (0, 0.0))
            for column, text in ((3, str(count)), (4, f"{hectares:.2f}")):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemIsEditable)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(row, column, item)
        self._filling = False
        if current in self.classes:
            self.select_class(current)
        elif self.classes:
            self.table.selectRow(0)
        total = sum(c for c, _ in counts.values())
        self.status.setText(
            "Choose or create a training layer." if self.layer is None else
            f"{total} polygon(s) in {len(self.classes)} class(es) in {self.layer.name()} "
            f"(fields {' / '.join(self._fields())}).")

    def _item_changed(self, item):
        if self._filling or item.column() != 1:
            return
        class_id = int(self.table.item(item.row(), 0).text())
        name = item.text().strip()
        if name and name != self.classes[class_id][0]:
            self.rename_class(class_id, name)

    def _layer_edited(self, *args):
        self._profile_cache.clear()
        self.refresh()

    # -- drawing --------------------------------------------------------------------------------
    def toggle_drawing(self, on):
        """Activates or releases the polygon tool."""
        if on:
            if self.layer is None or self.current_class() is None:
                self.status.setText("Choose a training layer and add a class before drawing.")
                self.draw_button.setChecked(False)
                return
            self.canvas.setMapTool(self.tool)
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def _tool_changed(self, new_tool, old_tool=None):
        if new_tool is not self.tool and self.draw_button.isChecked():
            self.draw_button.blockSignals(True)
            self.draw_button.setChecked(False)
            self.draw_button.blockSignals(False)

    def add_polygon(self, geometry):
        """Saves a polygon drawn in map coordinates with the current class; returns its id."""
        class_id = self.current_class()
        if self.layer is None or class_id is None:
            self.status.setText("Choose a training layer and a class first.")
            return None
        geometry = QgsGeometry(geometry)
        canvas_crs = self.canvas.mapSettings().destinationCrs()
        if canvas_crs.isValid() and canvas_crs != self.layer.crs():
            geometry.transform(QgsCoordinateTransform(canvas_crs, self.layer.crs(),
                                                      QgsProject.instance()))
        if QgsWkbTypes.isMultiType(self.layer.wkbType()):
            geometry.convertToMultiType()
        feature = QgsFeature(self.layer.fields())
        feature.setGeometry(geometry)
        name, color = self.classes[class_id]
        id_field, name_field, color_field = self._fields()
        feature[id_field] = class_id
        feature[name_field] = name
        feature[color_field] = color
        if self.layer.isEditable():
            ok = self.layer.addFeature(feature)
            fid = feature.id()
        else:  # saved at once, as the user draws
            ok, added = self.layer.dataProvider().addFeatures([feature])
            fid = added[0].id() if ok and added else None
            self.layer.updateExtents()
            self.layer.triggerRepaint()
        if not ok:
            self.status.setText(f"Could not save the polygon in {self.layer.name()}.")
            return None
        self._profile_cache.clear()
        self.refresh()
        return fid

    # -- spectral profile -----------------------------------------------------------------------
    def show_profile_at(self, point):
        """Shows the profile of the training polygon under ``point`` (map coordinates)."""
        raster = self.raster_combo.currentLayer()
        if self.layer is None or raster is None or not self.isVisible():
            return None
        canvas_crs = self.canvas.mapSettings().destinationCrs()
        geometry = QgsGeometry.fromPointXY(QgsPointXY(point))
        if canvas_crs.isValid() and canvas_crs != self.layer.crs():
            geometry.transform(QgsCoordinateTransform(canvas_crs, self.layer.crs(),
                                                      QgsProject.instance()))
        where = geometry.asPoint()
        box = QgsRectangle(where.x(), where.y(), where.x(), where.y())
        for feature in self.layer.getFeatures(QgsFeatureRequest().setFilterRect(box)):
            if feature.geometry().contains(geometry):
                return self.show_profile(feature)
        return None

    def show_profile(self, feature):
        """Computes (once per polygon) and plots the profile of ``feature``."""
        raster = self.raster_combo.currentLayer()
        if raster is None:
            return None
        key = (feature.id(), raster.id())
        if key not in self._profile_cache:
            try:
                self._profile_cache[key] = polygon_profile(raster, feature.geometry(),
                                                           self.layer.crs())
            except Exception as exc:  # a raster GDAL cannot read: say so in the plot
                self.plot.clear(f"Cannot read {raster.name()}: {exc}")
                return None
        names, means, stds, count = self._profile_cache[key]
        class_id = feature[self.field_names[CLASS_ID]]
        name, color = ("?", "#000000") if is_null(class_id) else \
            self.classes.get(int(class_id), ("?", "#000000"))
        self.plot.set_profile(names, means, stds, color,
                              f"{name}: polygon {feature.id()}, {count} px, mean ± std")
        return self._profile_cache[key]

    def close_tools(self):
        """Releases the map tool and canvas connections (plugin unload)."""
        if self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)
        self.tool.reset()
        for signal, slot in ((self.canvas.xyCoordinates, self.show_profile_at),
                             (self.canvas.mapToolSet, self._tool_changed)):
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
