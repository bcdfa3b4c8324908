"""The dependency dialog: lists what LandFusion needs, installs what is missing in the background."""

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..core import dependencies, package_installer

LOG_TAG = "LandFusion"


def private_dir():
    """Returns the private package folder of the current QGIS profile."""
    return package_installer.configured_dir() or package_installer.configure(
        QgsApplication.qgisSettingsDirPath())


class InstallTask(QgsTask):
    """Runs :func:`core.package_installer.install` and the import check off the GUI thread."""

    logged = pyqtSignal(str)

    def __init__(self, packages, target, python=None):
        """Installs ``packages`` (Dependency objects) into ``target``."""
        super().__init__("LandFusion: installing Python packages", QgsTask.CanCancel)
        self.packages = list(packages)
        self.target = target
        self.python = python
        self.installed = []
        self.problems = []
        self.error = ""

    def run(self):
        """Installs, then imports every package in a fresh Python (worker thread)."""
        try:
            self.installed = package_installer.install(
                dependencies.requirements_for(self.packages), self.target, python=self.python,
                progress=lambda f: self.setProgress(100.0 * f), log=self.logged.emit,
                is_cancelled=self.isCanceled)
            self.logged.emit("Checking the imports in a fresh Python...")
            self.problems = package_installer.verify(self.packages, self.target, python=self.python)
        except package_installer.InstallError as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # an unexpected failure must reach the dialog, not vanish
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        self.setProgress(100.0)
        return not self.problems


class DependencyDialog(QDialog):
    """Shows every dependency with its state and installs the ticked pip packages."""

    COLUMNS = ("Package", "Installed", "Needs", "Why", "Algorithms")
    SETTINGS_KEY = "landfusion/check_dependencies_at_start"

    def __init__(self, parent=None, python=None):
        """Builds the dialog; ``python`` overrides the interpreter that runs pip."""
        super().__init__(parent)
        self.setObjectName("LandFusionDependencyDialog")
        self.setWindowTitle("LandFusion - Python dependencies")
        self.python = python
        self.task = None
        self.target = private_dir()
        layout = QVBoxLayout(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("dependencyTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 2)
        pip_python = package_installer.find_python() or "not found"
        where = QLabel(
            f"pip packages are installed by QGIS's Python ({pip_python}) "
            f"into <b>{self.target}</b>, a folder of this QGIS profile (not the plugin folder, not "
            "the system), with numpy and scipy pinned to the versions QGIS already uses. "
            "numpy, GDAL, rasterio and scipy are never installed with pip: they must come with QGIS "
            "or your system's packages.")
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(where)
        self.progress = QProgressBar()
        self.progress.setObjectName("installProgress")
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setObjectName("installLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("pip's output appears here.")
        layout.addWidget(self.log, 1)
        self.check_at_start = QCheckBox("Check the dependencies when QGIS starts")
        from qgis.core import QgsSettings

        self.check_at_start.setChecked(QgsSettings().value(self.SETTINGS_KEY, True, type=bool))
        self.check_at_start.toggled.connect(
            lambda on: QgsSettings().setValue(self.SETTINGS_KEY, bool(on)))
        buttons = QHBoxLayout()
        buttons.addWidget(self.check_at_start)
        buttons.addStretch(1)
        self.install_button = QPushButton("Install selected")
        self.install_button.setObjectName("installButton")
        self.install_button.clicked.connect(self.install)
        self.cancel_button = QPushButton("Cancel installation")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        box = QDialogButtonBox(QDialogButtonBox.Close)
        box.rejected.connect(self.reject)
        buttons.addWidget(self.install_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(box)
        layout.addLayout(buttons)
        self.resize(900, 560)
        self.refresh()

    def refresh(self):
        """Re-checks every dependency and fills the table."""
        rows = dependencies.check_dependencies(include_optional=True, deep=False)
        rows.sort(key=lambda s: (s.ok, s.dependency.optional))  # what is missing on top
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, status in enumerate(rows):
            dep = status.dependency
            name = QTableWidgetItem(dep.pip_name + (" (optional)" if dep.optional else ""))
            if status.ok:
                name.setFlags(name.flags() & ~Qt.ItemIsUserCheckable)
            elif dep.from_pip:
                name.setFlags(name.flags() | Qt.ItemIsUserCheckable)
                name.setCheckState(Qt.Unchecked if dep.optional else Qt.Checked)
            installed = QTableWidgetItem(status.version or ("missing" if not status.ok else "?"))
            if not status.ok:
                installed.setForeground(QColor("#b00020"))
                installed.setToolTip(status.problem)
                if not dep.from_pip:
                    installed.setText(f"missing: install {dep.debian or dep.osgeo4w} "
                                      "with your system/QGIS packages")
            who = "all" if dependencies.ALL in dep.needed_by else ", ".join(dep.needed_by) or "-"
            for column, item in enumerate((name, installed, QTableWidgetItem(">= " + dep.minimum),
                                           QTableWidgetItem(dep.why), QTableWidgetItem(who))):
                self.table.setItem(i, column, item)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(3, min(self.table.columnWidth(3), 300))  # "Why" wraps
        self.table.setWordWrap(True)
        self.table.resizeRowsToContents()
        bad = [s for s in rows if not s.ok and not s.dependency.optional]
        if bad:
            self.summary.setText(
                "<b>Missing:</b> " + ", ".join(s.dependency.pip_name for s in bad)
                + ". The algorithms that need them are disabled until they are installed.")
        else:
            self.summary.setText("Every required package is installed.")
        self.install_button.setEnabled(bool(self.selected()) and self.task is None)

    def selected(self):
        """Returns the ticked Dependency objects."""
        chosen = []
        for i, status in enumerate(self.rows):
            item = self.table.item(i, 0)
            if item is not None and item.flags() & Qt.ItemIsUserCheckable \
                    and item.checkState() == Qt.Checked:
                chosen.append(status.dependency)
        return chosen

    def append_log(self, line):
        """Adds one line to the log view and QGIS's message log."""
        self.log.appendPlainText(line)
        QgsMessageLog.logMessage(line, LOG_TAG, Qgis.Info)

    def install(self):
        """Starts the installation task for the ticked packages."""
        packages = self.selected()
        if not packages or self.task is not None:
            return
        self.log.clear()
        self.append_log("Installing " + ", ".join(d.pip_name for d in packages)
                        + f" into {self.target}")
        self.task = InstallTask(packages, self.target, python=self.python)
        self.task.logged.connect(self.append_log)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.task.taskCompleted.connect(self.finished_task)
        self.task.taskTerminated.connect(self.finished_task)
        self.install_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self):
        """Cancels a running installation."""
        if self.task is not None:
            self.task.cancel()

    def finished_task(self):
        """Reports the outcome, activates the folder and re-checks."""
        task, self.task = self.task, None
        self.cancel_button.setEnabled(False)
        if task is None:
            return
        package_installer.activate(self.target)
        self.refresh()
        if task.error:
            self.append_log("FAILED: " + task.error)
            self.summary.setText("<b>Installation failed.</b> " + task.error)
        elif task.problems:
            self.append_log("Installed, but these do not import: " + "; ".join(task.problems))
            self.summary.setText(
                "<b>Installed, but not usable:</b> " + "; ".join(task.problems)
                + ". Restart QGIS and try again; if it persists, another copy of the package "
                "shadows it (see the log) or it does not support this platform.")
        else:
            self.progress.setValue(100)
            self.append_log("Done: " + (", ".join(task.installed) or "nothing was missing")
                            + ". Restart QGIS if an algorithm still reports a missing package.")


def missing_at_start():
    """Returns the required dependencies missing now (fast check, no heavy imports)."""
    return [s for s in dependencies.check_dependencies(include_optional=False, deep=False)
            if not s.ok]
