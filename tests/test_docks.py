"""The training-data and reference-labelling docks, driven offscreen through their map tool and
buttons as a user would, on a real canvas."""

import math

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

EPSG = 32633
ORIGIN = (500000.0, 5000000.0)
PIXEL = 10.0


@pytest.fixture
def iface(qgis_app):
    """A QGIS interface with a real map canvas (400 x 400 px over a 4 km square in UTM 33N)."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsProject, QgsRectangle
    from qgis.gui import QgsMapCanvas

    canvas = QgsMapCanvas()

    class Interface:
        """The part of QgisInterface the docks use."""

        def mapCanvas(self):  # noqa: N802 (QGIS API name)
            return canvas

    interface = Interface()
    QgsProject.instance().clear()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem(f"EPSG:{EPSG}"))
    canvas.resize(400, 400)
    canvas.show()
    canvas.setExtent(QgsRectangle(ORIGIN[0], ORIGIN[1] - 4000, ORIGIN[0] + 4000, ORIGIN[1]))
    canvas.refresh()
    yield interface
    QgsProject.instance().clear()


def write_raster(path, bands, names, classes=None):
    """Writes float bands (or a class band with colours and names) on the test grid."""
    count, height, width = bands.shape
    kind = gdal.GDT_Byte if classes else gdal.GDT_Float32
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, count, kind)
    ds.SetGeoTransform((ORIGIN[0], PIXEL, 0, ORIGIN[1], 0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(count):
        ds.GetRasterBand(i + 1).WriteArray(bands[i])
        ds.GetRasterBand(i + 1).SetDescription(names[i])
    ds = None
    if classes:
        from landfusion.core.io.classmap import ClassInfo, apply_class_styling

        apply_class_styling(str(path), [ClassInfo(v, n, c) for v, n, c in classes], nodata=0)
    return path


def click(tool, canvas, x, y, button):
    """Sends a mouse release at canvas pixel (x, y) to a map tool."""
    from qgis.gui import QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint

    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(x, y),
                                             button))


def test_drawing_a_polygon_saves_it_with_the_current_class(iface, tmp_path):
    from landfusion.ui.training_dock import TrainingDock
    from qgis.PyQt.QtCore import Qt

    canvas = iface.mapCanvas()
    dock = TrainingDock(iface)
    path = str(tmp_path / "training.gpkg")
    layer = dock.use_new_layer(path)
    assert layer.isValid() and layer.crs().authid() == f"EPSG:{EPSG}"  # the map's CRS
    assert dock.add_class("water", "#1f78b4") == 1
    assert dock.add_class("forest", "#33a02c") == 2
    dock.select_class(2)
    dock.draw_button.setChecked(True)
    assert canvas.mapTool() is dock.tool
    # 100 x 100 canvas pixels = 1 km x 1 km at 10 m per canvas pixel
    for x, y in ((100, 100), (200, 100), (200, 200), (100, 200)):
        click(dock.tool, canvas, x, y, Qt.LeftButton)
    click(dock.tool, canvas, 150, 150, Qt.RightButton)

    source = ogr.Open(path)
    features = list(source.GetLayer(0))
    assert len(features) == 1  # on disk at once, no edit session to commit
    feature = features[0]
    assert (feature["class_id"], feature["class_name"], feature["color"]) == (2, "forest",
                                                                               "#33a02c")
    area = feature.GetGeometryRef().GetArea()
    map_units_per_pixel = canvas.mapUnitsPerPixel()
    assert area == pytest.approx((100 * map_units_per_pixel) ** 2, rel=0.02)
    assert dock.counts() == {1: (0, 0.0), 2: (1, pytest.approx(area / 10000, rel=0.02))}
    assert dock.table.item(1, 3).text() == "1"

    # renaming and recolouring a class rewrite its polygons
    dock.table.item(1, 1).setText("woodland")
    dock.recolour_class(2, "#00ff00")
    source = ogr.Open(path)
    feature = next(iter(source.GetLayer(0)))
    assert (feature["class_name"], feature["color"]) == ("woodland", "#00ff00")

    # fewer than three vertices is not a polygon; Esc discards what was drawn
    click(dock.tool, canvas, 300, 300, Qt.LeftButton)
    click(dock.tool, canvas, 310, 300, Qt.RightButton)
    assert dock.counts()[2][0] == 1
    dock.close_tools()
    assert canvas.mapTool() is not dock.tool


def test_spectral_profile_of_the_polygon_under_the_cursor(iface, tmp_path):
    from landfusion.ui.training_dock import TrainingDock
    from qgis.core import QgsPointXY, QgsProject, QgsRasterLayer
    from qgis.gui import QgsMapMouseEvent  # noqa: F401 (canvas events module loaded)
    from qgis.PyQt.QtCore import Qt

    rng = np.random.default_rng(3)
    bands = rng.normal([[[0.05]], [[0.08]], [[0.30]]], 0.01, size=(3, 400, 400)).astype("float32")
    raster = QgsRasterLayer(str(write_raster(tmp_path / "s2.tif", bands, ["B04", "B08", "B11"])),
                            "s2")
    QgsProject.instance().addMapLayer(raster)
    canvas = iface.mapCanvas()
    dock = TrainingDock(iface)
    dock.use_new_layer(str(tmp_path / "training.gpkg"))
    dock.add_class("crop", "#ff7f00")
    dock.raster_combo.setLayer(raster)
    dock.draw_button.setChecked(True)
    # a square from canvas pixel 40 to 60: map x 500400..500600, y 4999600..4999400
    for x, y in ((40, 40), (60, 40), (60, 60), (40, 60)):
        click(dock.tool, canvas, x, y, Qt.LeftButton)
    dock.tool.finish()
    dock.show()
    names, means, stds, count = dock.show_profile_at(QgsPointXY(500500, 4999500))
    inside = bands[:, 40:60, 40:60].reshape(3, -1)
    assert names == ["B04", "B08", "B11"] and count == inside.shape[1] == 400
    assert np.allclose(means, inside.mean(axis=1), atol=1e-6)
    assert np.allclose(stds, inside.std(axis=1), atol=1e-6)
    assert dock.plot.names == names and dock.plot.title.startswith("crop")
    assert dock.show_profile_at(QgsPointXY(503000, 4997000)) is None  # outside every polygon
    image = dock.plot.grab().toImage()
    assert not image.isNull() and image.width() > 0
    dock.close_tools()


def read_points(path):
    """Reads a point file from disk (what was saved) as dictionaries."""
    source = ogr.Open(str(path))
    rows = []
    for feature in source.GetLayer(0):
        row = {k: feature[k] for k in ("sample_id", "map_class", "reference")}
        row["x"], row["y"] = feature.GetGeometryRef().GetX(), feature.GetGeometryRef().GetY()
        rows.append(row)
    return rows


@pytest.fixture
def sample(run_algorithm, tmp_path):
    """A landfusion:stratifiedsample output over a 3-class map."""
    classes = np.ones((1, 200, 200), dtype="uint8")
    classes[0, :, 100:] = 2
    classes[0, 150:, :] = 3
    classes[0, :5, :5] = 0  # nodata corner
    styles = [(1, "water", (31, 120, 180)), (2, "forest", (51, 160, 44)), (3, "urban", (227, 26, 28))]
    raster = write_raster(tmp_path / "map.tif", classes, ["class"], classes=styles)
    out = tmp_path / "sample.gpkg"
    result = run_algorithm("landfusion:stratifiedsample",
                           {"INPUT": str(raster), "SAMPLE_SIZE": 12, "ALLOCATION": 0,
                            "SEED": 7, "OUTPUT": str(out)})
    assert result["COUNT"] == 12
    return raster, out


def test_labelling_a_point_writes_the_field(iface, sample, run_algorithm, tmp_path):
    from landfusion.ui.labelling_dock import LabellingDock
    from qgis.core import QgsProject, QgsRasterLayer

    raster_path, sample_path = sample
    raster = QgsRasterLayer(str(raster_path), "map")
    QgsProject.instance().addMapLayer(raster)
    dock = LabellingDock(iface)
    dock.map_combo.setLayer(raster)
    layer = dock.load_sample_file(str(sample_path))
    assert dock.field() == "reference"
    assert [(v, n) for v, n, _ in dock.classes] == [(1, "water"), (2, "forest"), (3, "urban")]
    assert [b.text() for b in dock.class_buttons] == ["1  water", "2  forest", "3  urban"]
    assert dock.position_label.text().startswith("Point 1 of 12")
    # points come in sample_id order (random), the canvas centred on the first one
    by_id = sorted(read_points(sample_path), key=lambda f: f["sample_id"])
    centre = iface.mapCanvas().extent().center()
    assert math.hypot(centre.x() - by_id[0]["x"], centre.y() - by_id[0]["y"]) < 1.0

    dock.class_buttons[1].click()  # "forest"
    saved = {f["sample_id"]: f["reference"] for f in read_points(sample_path)}
    assert saved[by_id[0]["sample_id"]] == 2
    assert sum(v is not None for v in saved.values()) == 1
    assert dock.position == 1 and dock.progress.value() == 1

    # label the rest blind-tested against the map value, then the report from the dock's values
    truth = {f["sample_id"]: f["map_class"] for f in by_id}
    dock.go(0)
    dock.label(truth[by_id[0]["sample_id"]])
    while dock.next_unlabelled():
        dock.label(truth[dock.current_feature()["sample_id"]])
    assert dock.labelled_count() == 12 and dock.progress.value() == 12
    parameters = dock.report_parameters()
    assert parameters["REFERENCE"] is layer and parameters["CLASSIFICATION"] is raster
    result = run_algorithm("landfusion:accuracyreport", dict(
        parameters, OUTPUT_HTML=str(tmp_path / "acc.html"), OUTPUT_JSON=str(tmp_path / "acc.json"),
        OUTPUT_CSV=str(tmp_path / "acc.csv")))
    assert result["SAMPLES"] == 12 and result["OVERALL_ACCURACY"] == pytest.approx(1.0)

    dock.go(3)
    dock.label(None)  # clearing a label saves it too
    assert dock.labelled_count() == 11

    # the keys: with the dock focused, "3" labels the point "urban" and moves on
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest
    from qgis.PyQt.QtWidgets import QApplication

    dock.show()
    QApplication.setActiveWindow(dock)
    dock.widget().setFocus()
    QTest.keyClick(dock.widget(), Qt.Key_3)
    assert dock.labelled_count() == 12 and dock.position == 4
    assert {f["sample_id"]: f["reference"] for f in read_points(sample_path)}[
        by_id[3]["sample_id"]] == 3
    QTest.keyClick(dock.widget(), Qt.Key_Left)
    assert dock.position == 3
    dock.close_tools()


def test_existing_layer_with_its_own_class_fields(iface, tmp_path):
    """A reference layer named like the demo's (cid / name / color) is used as it is."""
    from qgis.core import QgsGeometry, QgsProject, QgsVectorLayer

    from landfusion.ui.training_dock import TrainingDock

    path = tmp_path / "reference.gpkg"
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = source.CreateLayer("reference", srs, ogr.wkbPolygon)
    for name, kind in (("pid", ogr.OFTInteger), ("cid", ogr.OFTInteger), ("name", ogr.OFTString),
                       ("color", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    for pid, (cid, name, color, x) in enumerate(((1, "water", "#3d7ab8", 500100),
                                                 (2, "land", "#5b9e4d", 501100))):
        feature = ogr.Feature(layer.GetLayerDefn())
        for key, value in (("pid", pid), ("cid", cid), ("name", name), ("color", color)):
            feature.SetField(key, value)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(
            f"POLYGON(({x} 4999900,{x + 300} 4999900,{x + 300} 4999600,{x} 4999600,{x} 4999900))"))
        layer.CreateFeature(feature)
    source = layer = None
    qgs_layer = QgsVectorLayer(str(path), "reference", "ogr")
    QgsProject.instance().addMapLayer(qgs_layer)
    dock = TrainingDock(iface)
    dock.layer_combo.setLayer(qgs_layer)
    assert dock.field_names == {"class_id": "cid", "class_name": "name", "color": "color"}
    assert qgs_layer.fields().names() == ["fid", "pid", "cid", "name", "color"]  # nothing added
    assert dock.classes == {1: ["water", "#3d7ab8"], 2: ["land", "#5b9e4d"]}
    assert dock.counts() == {1: (1, pytest.approx(9.0)), 2: (1, pytest.approx(9.0))}
    dock.select_class(2)
    fid = dock.add_polygon(QgsGeometry.fromWkt(
        "POLYGON((502000 4999900,502100 4999900,502100 4999800,502000 4999800,502000 4999900))"))
    added = qgs_layer.getFeature(fid)
    assert (added["cid"], added["name"], added["color"]) == (2, "land", "#5b9e4d")
    assert dock.counts()[2] == (2, pytest.approx(10.0))
    dock.close_tools()
