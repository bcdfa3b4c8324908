"""Registers the LandFusion Processing provider, its menu, toolbar and docks with QGIS."""

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .algorithms.provider import LandFusionProvider
from .core import package_installer

MENU = "&LandFusion"
ICON = os.path.join(os.path.dirname(__file__), "resources", "icons", "landfusion.svg")


class LandFusionPlugin:
    """QGIS plugin entry point: the provider, and on the desktop the docks and the installer."""

    def __init__(self, iface):
        """Stores the QGIS interface (None when loaded by qgis_process) and finds the packages.

        The private package folder of the profile goes on ``sys.path`` here, before any
        algorithm runs, so qgis_process sees what the desktop installer put there.
        """
        self.iface = iface
        self.provider = None
        self.actions = []
        self.toolbar = None
        self.docks = {}
        self.dependency_dialog = None
        package_installer.configure(QgsApplication.qgisSettingsDirPath())

    def initProcessing(self):
        """Adds the provider; qgis_process calls this without a GUI."""
        if self.provider is None:
            self.provider = LandFusionProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):
        """Adds the provider, the LandFusion menu and toolbar, and checks the dependencies."""
        self.initProcessing()
        if self.iface is None:
            return
        self.toolbar = self.iface.addToolBar("LandFusion")
        self.toolbar.setObjectName("LandFusionToolbar")
        self._add_action("Training data", "landfusionTrainingDock",
                         lambda: self.show_dock("training"), toolbar=True)
        self._add_action("Reference labelling", "landfusionLabellingDock",
                         lambda: self.show_dock("labelling"), toolbar=True)
        self._add_action("Install Python dependencies...", "landfusionDependencies",
                         self.show_dependency_dialog)
        if QgsSettings().value("landfusion/check_dependencies_at_start", True, type=bool):
            QTimer.singleShot(0, self.check_dependencies)

    def _add_action(self, text, name, slot, toolbar=False):
        action = QAction(QIcon(ICON), text, self.iface.mainWindow())
        action.setObjectName(name)
        action.triggered.connect(slot)
        self.iface.addPluginToMenu(MENU, action)
        if toolbar:
            self.toolbar.addAction(action)
        self.actions.append(action)
        return action

    def check_dependencies(self):
        """Opens the installer when a required package is missing (desktop only, never headless)."""
        from .ui.dependency_dialog import missing_at_start

        if missing_at_start():
            self.show_dependency_dialog()

    def show_dependency_dialog(self):
        """Shows the dependency dialog (created once)."""
        from .ui.dependency_dialog import DependencyDialog

        if self.dependency_dialog is None:
            self.dependency_dialog = DependencyDialog(self.iface.mainWindow())
        else:
            self.dependency_dialog.refresh()
        self.dependency_dialog.show()
        self.dependency_dialog.raise_()
        return self.dependency_dialog

    def show_dock(self, which):
        """Shows the training-data or the reference-labelling dock (created once)."""
        dock = self.docks.get(which)
        if dock is None:
            if which == "training":
                from .ui.training_dock import TrainingDock as Dock
            else:
                from .ui.labelling_dock import LabellingDock as Dock
            dock = Dock(self.iface, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, dock)
            self.docks[which] = dock
        dock.show()
        dock.raise_()
        return dock

    def unload(self):
        """Removes the provider, the menu entries, the toolbar and the docks."""
        for dock in self.docks.values():
            dock.close_tools()
            self.iface.removeDockWidget(dock)
            dock.deleteLater()
        self.docks = {}
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
            action.deleteLater()
        self.actions = []
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.dependency_dialog is not None:
            self.dependency_dialog.deleteLater()
            self.dependency_dialog = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
