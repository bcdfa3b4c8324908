"""Runs inside real QGIS Desktop (``qgis --code desktop_session.py``) for test_desktop.py.

Opens what a user opens: the Processing toolbox on the LandFusion group, one algorithm dialog
per toolbox group, the two docks and the dependency installer with a package that is missing;
saves a screenshot of each and writes what it found to ``$LANDFUSION_DESKTOP_OUT/report.json``,
then quits QGIS.
"""

import json
import os
import traceback

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QTableWidget, QWidget
from qgis.utils import iface, plugins

OUT = os.environ["LANDFUSION_DESKTOP_OUT"]
report = {"errors": [], "screenshots": [], "dialogs": {}, "docks": {}}


def shot(widget, name):
    """Saves a screenshot of ``widget`` (at most 1000 px wide) as ``name``.png."""
    QApplication.processEvents()
    image = widget.grab()
    if image.width() > 1000:
        image = image.scaledToWidth(1000, Qt.SmoothTransformation)
    path = os.path.join(OUT, name + ".png")
    image.save(path)
    report["screenshots"].append(path)


def names_of(widget, kind=QWidget):
    """Returns the object names of the children of ``widget`` that have one."""
    return sorted({w.objectName() for w in widget.findChildren(kind) if w.objectName()})


def toolbox():
    """Shows the Processing toolbox filtered on LandFusion; returns the algorithm ids listed."""
    dock = iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox")
    dock.show()
    dock.raise_()
    dock.searchBox.setText("landfusion")
    QApplication.processEvents()
    tree = dock.algorithmTree
    tree.expandAll()
    found = []
    model = tree.model()

    def walk(parent):
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            alg = tree.algorithmForIndex(index)
            if alg is not None:
                found.append(alg.id())
            walk(index)

    from qgis.PyQt.QtCore import QModelIndex

    walk(QModelIndex())
    shot(dock, "toolbox")
    report["toolbox"] = found


def algorithm_dialogs():
    """Opens one algorithm dialog per LandFusion toolbox group."""
    import processing

    provider = QgsApplication.processingRegistry().providerById("landfusion")
    report["algorithms"] = sorted(a.id() for a in provider.algorithms())
    seen = set()
    for alg in provider.algorithms():
        if alg.groupId() in seen:
            continue
        seen.add(alg.groupId())
        dialog = processing.createAlgorithmDialog(alg.id(), {})
        dialog.show()
        QApplication.processEvents()
        panel = dialog.mainWidget()
        wrappers = getattr(panel, "wrappers", {})
        report["dialogs"][alg.id()] = {
            "group": alg.group(), "title": dialog.windowTitle(),
            "parameters": sorted(wrappers) if wrappers else
            [p.name() for p in alg.parameterDefinitions()],
            "widgets_for_parameters": sum(1 for w in wrappers.values()
                                          if _widget_of(w) is not None) if wrappers else 0,
        }
        shot(dialog, "dialog_" + alg.name())
        dialog.close()
    model_card()


def _widget_of(wrapper):
    """The widget of a C++ wrapper, or of a Python one (processing.gui.wrappers.WidgetWrapper)."""
    widget = getattr(wrapper, "wrappedWidget", lambda: None)()
    return widget if widget is not None else getattr(wrapper, "widget", None)


def model_card():
    """Chooses the bundled water model in the Classify raster dialog and reads its card."""
    import processing

    folder = os.path.dirname(__import__("landfusion").__file__)
    dialog = processing.createAlgorithmDialog("landfusion:classifyraster", {})
    dialog.show()
    wrapper = dialog.mainWidget().wrappers["MODEL"]
    wrapper.setValue(os.path.join(folder, "resources", "models", "s1_water_unet.onnx"))
    QApplication.processEvents()
    report["model_card"] = wrapper.widget.cardText()
    shot(dialog, "dialog_classifyraster_model_card")
    dialog.close()


def scene():
    """Writes a small 3-class scene (class map and a 4-band S2-like raster) in UTM 33N."""
    import numpy as np
    from landfusion.core.io.classmap import ClassInfo, apply_class_styling
    from osgeo import gdal, osr

    classes = np.ones((300, 300), dtype="uint8")
    classes[:, 150:] = 2
    classes[200:, :] = 3
    spectra = {1: (0.04, 0.03, 0.02, 0.01), 2: (0.05, 0.03, 0.32, 0.16),
               3: (0.12, 0.14, 0.24, 0.27)}
    rng = np.random.default_rng(1)
    bands = np.zeros((4, 300, 300), dtype="float32")
    for value, spectrum in spectra.items():
        for b, mean in enumerate(spectrum):
            bands[b][classes == value] = mean
    bands += rng.normal(0, 0.01, bands.shape).astype("float32")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    paths = {}
    for name, data, kind, names in (("s2", bands, gdal.GDT_Float32, ["B03", "B04", "B08", "B11"]),
                                    ("map", classes[None], gdal.GDT_Byte, ["class"])):
        path = os.path.join(OUT, name + ".tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, 300, 300, len(data), kind)
        ds.SetGeoTransform((500000, 10, 0, 5000000, 0, -10))
        ds.SetProjection(srs.ExportToWkt())
        for i, band in enumerate(data):
            ds.GetRasterBand(i + 1).WriteArray(band)
            ds.GetRasterBand(i + 1).SetDescription(names[i])
        ds = None
        paths[name] = path
    apply_class_styling(paths["map"], [ClassInfo(1, "water", (31, 120, 180)),
                                      ClassInfo(2, "forest", (51, 160, 44)),
                                      ClassInfo(3, "urban", (227, 26, 28))], nodata=0)
    return paths


def docks():
    """Opens the two docks, draws training polygons and labels sample points in them."""
    import processing
    from qgis.core import QgsGeometry, QgsProject, QgsRasterLayer

    paths = scene()
    s2 = QgsRasterLayer(paths["s2"], "S2 (B03 B04 B08 B11)")
    class_map = QgsRasterLayer(paths["map"], "land cover")
    QgsProject.instance().addMapLayers([class_map, s2])
    QgsProject.instance().setCrs(s2.crs())  # the polygons below are drawn in map coordinates
    QApplication.processEvents()
    iface.mapCanvas().setExtent(s2.extent())
    plugin = plugins["landfusion"]

    training = plugin.show_dock("training")
    training.use_new_layer(os.path.join(OUT, "training.gpkg"))
    for name, colour in (("water", "#1f78b4"), ("forest", "#33a02c"), ("urban", "#e31a1c")):
        training.add_class(name, colour)
    training.raster_combo.setLayer(s2)
    polygons = {1: "POLYGON((500200 4999200,500900 4999200,500900 4998500,500200 4998500,500200 4999200))",
                2: "POLYGON((502000 4999300,502800 4999300,502600 4998400,502000 4998600,502000 4999300))",
                3: "POLYGON((500500 4997600,501500 4997600,501500 4997200,500500 4997200,500500 4997600))"}
    for class_id, wkt in polygons.items():
        training.select_class(class_id)
        training.add_polygon(QgsGeometry.fromWkt(wkt))
    training.select_class(2)
    training.draw_button.setChecked(True)  # the polygon tool stays active until unload
    report["docks_map_tool"] = type(iface.mapCanvas().mapTool()).__name__
    feature = next(f for f in training.layer.getFeatures() if f["class_id"] == 2)
    profile = training.show_profile(feature)
    assert profile is not None, training.plot.title
    names, means, _, count = profile

    labelling = plugin.show_dock("labelling")
    result = processing.run("landfusion:stratifiedsample", {
        "INPUT": paths["map"], "SAMPLE_SIZE": 30, "ALLOCATION": 0, "SEED": 5,
        "OUTPUT": os.path.join(OUT, "sample.gpkg")})
    labelling.map_combo.setLayer(class_map)
    labelling.background_combo.setLayer(s2)
    labelling.window_spin.setValue(800)
    labelling.load_sample_file(result["OUTPUT"])
    for _ in range(3):
        labelling.label(labelling.current_feature()["map_class"])
    QApplication.processEvents()
    iface.mapCanvas().refresh()
    iface.mapCanvas().waitWhileRendering()
    for which, dock in (("training", training), ("labelling", labelling)):
        report["docks"][which] = {
            "object": dock.objectName(), "visible": dock.isVisible(),
            "area": int(iface.mainWindow().dockWidgetArea(dock)), "children": names_of(dock)}
        shot(dock, "dock_" + which)
    report["docks"]["training"]["counts"] = {str(k): v[0] for k, v in training.counts().items()}
    report["docks"]["training"]["profile"] = {"bands": names, "means": [float(m) for m in means],
                                              "pixels": count}
    report["docks"]["labelling"]["labelled"] = labelling.labelled_count()
    report["docks"]["labelling"]["points"] = len(labelling.ids)
    report["docks"]["labelling"]["position"] = labelling.position_label.text()
    iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox").hide()
    root = QgsProject.instance().layerTreeRoot()
    root.findLayer(class_map.id()).setItemVisibilityChecked(False)  # show the polygons on S2
    iface.mapCanvas().setExtent(s2.extent())
    iface.mapCanvas().refresh()
    iface.mapCanvas().waitWhileRendering()
    shot(iface.mainWindow(), "main_window")


def installer():
    """Shows the installer with a package that is missing, as QGIS would at start."""
    from landfusion.core import dependencies

    fake = dependencies.Dependency("landfusion-missing-example", "landfusion_missing_example",
                                   "1.0", "shown by the desktop test", ("classifyraster",))
    dependencies.DEPENDENCIES = dependencies.DEPENDENCIES + (fake,)
    plugin = plugins["landfusion"]
    plugin.check_dependencies()  # what initGui schedules when something is missing
    dialog = plugin.dependency_dialog
    QApplication.processEvents()
    table = dialog.findChild(QTableWidget, "dependencyTable")
    rows = [table.item(r, 0).text() for r in range(table.rowCount())]
    checked = [table.item(r, 0).text() for r in range(table.rowCount())
               if table.item(r, 0).flags() & Qt.ItemIsUserCheckable
               and table.item(r, 0).checkState() == Qt.Checked]
    alg = QgsApplication.processingRegistry().algorithmById("landfusion:classifyraster")
    ok, message = alg.canExecute()
    report["installer"] = {
        "visible": dialog is not None and dialog.isVisible(), "rows": rows, "checked": checked,
        "install_enabled": dialog.install_button.isEnabled(), "summary": dialog.summary.text(),
        "target": dialog.target, "children": names_of(dialog),
        "classifyraster_can_execute": ok, "classifyraster_message": message}
    shot(dialog, "installer")
    # install it (from the local wheel folder the test points pip to) and wait for the task
    import time

    dialog.install_button.click()
    deadline = time.monotonic() + 120
    while dialog.task is not None and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.05)
    table = dialog.findChild(QTableWidget, "dependencyTable")
    report["installer"]["after_install"] = {
        "finished": dialog.task is None, "progress": dialog.progress.value(),
        "log": dialog.log.toPlainText(), "summary": dialog.summary.text(),
        "classifyraster_can_execute": alg.canExecute()[0],
        "rows_missing": [table.item(r, 0).text() for r in range(table.rowCount())
                         if table.item(r, 1).text().startswith("missing")
                         and "optional" not in table.item(r, 0).text()]}
    shot(dialog, "installer_done")


def menu():
    """Records the LandFusion entries of the Plugins menu and the toolbar."""
    plugin = plugins["landfusion"]
    report["menu"] = [a.text() for a in plugin.actions]
    report["toolbar"] = plugin.toolbar.objectName() if plugin.toolbar else None


def unload():
    """Unloads the plugin as the plugin manager does and records what is left behind."""
    plugin = plugins["landfusion"]
    window = iface.mainWindow()
    plugin.unload()
    QApplication.processEvents()
    from qgis.PyQt.QtCore import QCoreApplication, QEvent
    from qgis.PyQt.QtWidgets import QAction, QToolBar

    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    report["unload"] = {
        "provider": QgsApplication.processingRegistry().providerById("landfusion") is not None,
        "docks": [d.objectName() for d in window.findChildren(QDockWidget)
                  if d.objectName().startswith("LandFusion")],
        "toolbars": [t.objectName() for t in window.findChildren(QToolBar)
                     if t.objectName() == "LandFusionToolbar"],
        "actions": [a.objectName() for a in window.findChildren(QAction)
                    if a.objectName().startswith("landfusion")],
        "map_tool": type(iface.mapCanvas().mapTool()).__name__,
    }


def run():
    """Runs every step, writes the report and quits."""
    try:
        report["plugin_loaded"] = "landfusion" in plugins
        for step in (menu, toolbox, algorithm_dialogs, docks, installer, unload):
            try:
                step()
            except Exception:
                report["errors"].append(f"{step.__name__}: {traceback.format_exc()}")
    finally:
        with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
        os._exit(0)  # no "save project?" question, no slow teardown


QTimer.singleShot(1500, run)
