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
                                          if getattr(w, "wrappedWidget", lambda: None)()
                                          is not None) if wrappers else 0,
        }
        shot(dialog, "dialog_" + alg.name())
        dialog.close()


def docks():
    """Opens the two docks and records their widgets."""
    plugin = plugins["landfusion"]
    for which in ("training", "labelling"):
        dock = plugin.show_dock(which)
        QApplication.processEvents()
        report["docks"][which] = {
            "object": dock.objectName(), "visible": dock.isVisible(),
            "area": int(iface.mainWindow().dockWidgetArea(dock)), "children": names_of(dock)}
        shot(dock, "dock_" + which)
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


def menu():
    """Records the LandFusion entries of the Plugins menu and the toolbar."""
    plugin = plugins["landfusion"]
    report["menu"] = [a.text() for a in plugin.actions]
    report["toolbar"] = plugin.toolbar.objectName() if plugin.toolbar else None


def run():
    """Runs every step, writes the report and quits."""
    try:
        report["plugin_loaded"] = "landfusion" in plugins
        for step in (menu, toolbox, algorithm_dialogs, docks, installer):
            try:
                step()
            except Exception:
                report["errors"].append(f"{step.__name__}: {traceback.format_exc()}")
    finally:
        with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
        os._exit(0)  # no "save project?" question, no slow teardown


QTimer.singleShot(1500, run)
