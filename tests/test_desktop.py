"""Real QGIS Desktop under Xvfb: the zip installed into a fresh profile, the toolbox, one dialog
per algorithm group, both docks and the dependency installer, with screenshots."""

import json
import os
import shutil
import subprocess
import sysconfig
import zipfile
from pathlib import Path

import pytest
from wheels import make_wheel

ROOT = Path(__file__).resolve().parents[1]
QGIS = "/usr/bin/qgis"


@pytest.fixture(scope="module")
def desktop_run(tmp_path_factory):
    """Installs the packaged plugin into a new profile and runs tests/desktop_session.py."""
    if not os.path.isfile(QGIS) or not shutil.which("xvfb-run"):
        pytest.skip("QGIS Desktop or xvfb-run is not installed")
    work = tmp_path_factory.mktemp("desktop")
    built = subprocess.run(["bash", str(ROOT / "scripts" / "package.sh")], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    profiles = work / "qgis"  # QGIS keeps profiles in <profiles path>/profiles/<name>
    profile = profiles / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(ROOT / built.stdout.strip().splitlines()[-1]) as archive:
        archive.extractall(plugins)  # what "Install from ZIP" does
    (profile / "QGIS").mkdir()
    (profile / "QGIS" / "QGIS3.ini").write_text(
        "[PythonPlugins]\nlandfusion=true\n\n[qgis]\ncheckVersion=false\n"
        "showTips322=false\nallowVersionCheck=false\n")
    out = work / "out"
    out.mkdir()
    wheels = work / "wheels"  # the installer's package comes from here (pip reads PIP_* vars)
    wheels.mkdir()
    make_wheel(wheels, "landfusion_missing_example", "1.2")
    env = dict(os.environ, LANDFUSION_DESKTOP_OUT=str(out), HOME=str(work / "home"),
               XDG_RUNTIME_DIR=str(work / "runtime"),
               # the pip-only packages of the development .venv, as a user's private folder would
               PYTHONPATH=sysconfig.get_paths()["purelib"],
               PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
    env.pop("QT_QPA_PLATFORM", None)  # a real X display (Xvfb), not offscreen
    (work / "runtime").mkdir(mode=0o700)
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", QGIS, "--profiles-path", str(profiles),
         "--nologo", "--noversioncheck", "--code", str(ROOT / "tests" / "desktop_session.py")],
        env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    report = out / "report.json"
    assert report.is_file(), f"QGIS wrote no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(report.read_text()), out, plugins


def test_plugin_loads_from_the_zip_with_menu_and_toolbar(desktop_run):
    report, _, plugins = desktop_run
    assert report["errors"] == []
    assert report["plugin_loaded"]
    assert (plugins / "landfusion" / "metadata.txt").is_file()
    assert report["menu"] == ["Training data", "Reference labelling",
                              "Install Python dependencies..."]
    assert report["toolbar"] == "LandFusionToolbar"


def test_toolbox_lists_every_algorithm(desktop_run):
    report = desktop_run[0]
    assert len(report["algorithms"]) >= 8
    assert set(report["algorithms"]) <= set(report["toolbox"])


def test_one_dialog_per_group_has_a_widget_per_parameter(desktop_run):
    report = desktop_run[0]
    groups = {d["group"] for d in report["dialogs"].values()}
    assert len(groups) >= 3
    for alg_id, dialog in report["dialogs"].items():
        assert dialog["parameters"], alg_id
        assert dialog["widgets_for_parameters"] == len(dialog["parameters"]), alg_id
    assert any(a.endswith(("classifyraster", "trainclassifier", "cnnclassify"))
               for a in report["dialogs"])


def test_classify_dialog_shows_the_chosen_models_card(desktop_run):
    card = desktop_run[0]["model_card"]
    assert "segmentation CNN (segmentation)" in card
    assert "Bands in order: 1 VV (dB), 2 VH (dB)" in card
    assert "0 land" in card and "1 water" in card


def test_docks_open_with_their_widgets(desktop_run):
    docks = desktop_run[0]["docks"]
    training, labelling = docks["training"], docks["labelling"]
    assert training["object"] == "LandFusionTrainingDock" and training["visible"]
    for name in ("trainingLayerCombo", "classTable", "addClassButton", "drawButton",
                 "profileRasterCombo", "spectralProfilePlot"):
        assert name in training["children"], name
    assert training["counts"] == {"1": 1, "2": 1, "3": 1}
    profile = training["profile"]  # the forest polygon: low red (B04), high NIR (B08)
    assert profile["bands"] == ["B03", "B04", "B08", "B11"] and profile["pixels"] > 4000
    assert profile["means"] == pytest.approx([0.05, 0.03, 0.32, 0.16], abs=0.005)
    assert labelling["object"] == "LandFusionLabellingDock" and labelling["visible"]
    assert labelling["points"] == 30 and labelling["labelled"] == 3
    assert labelling["position"].startswith("Point 4 of 30")
    for name in ("sampleCombo", "referenceFieldCombo", "mapCombo", "backgroundCombo",
                 "labelProgress", "accuracyReportButton"):
        assert name in labelling["children"], name


def test_installer_lists_the_missing_package_and_disables_its_algorithms(desktop_run):
    installer = desktop_run[0]["installer"]
    assert installer["visible"]
    assert "landfusion-missing-example" in installer["checked"]
    assert "onnxruntime" in installer["rows"] and "torch (optional)" in installer["rows"]
    assert installer["install_enabled"]
    assert "landfusion-missing-example" in installer["summary"]
    assert installer["target"].endswith(os.path.join("python", "landfusion-packages", "3.11"))
    assert "/profiles/default/" in installer["target"]
    for name in ("dependencyTable", "installButton", "installProgress", "installLog"):
        assert name in installer["children"], name
    assert installer["classifyraster_can_execute"] is False
    assert "landfusion-missing-example >= 1.0" in installer["classifyraster_message"]


def test_installer_installs_into_the_profile_in_the_background(desktop_run):
    installer = desktop_run[0]["installer"]
    after = installer["after_install"]
    assert after["finished"] and after["progress"] == 100
    assert "Done: landfusion_missing_example==1.2" in after["log"] or \
        "Done: landfusion-missing-example==1.2" in after["log"]
    assert "numpy==" in after["log"]  # QGIS's numpy pinned
    assert os.path.isdir(os.path.join(installer["target"], "landfusion_missing_example"))
    assert after["classifyraster_can_execute"] is True
    assert after["rows_missing"] == []


def test_screenshots_were_saved(desktop_run):
    from qgis.PyQt.QtGui import QImage

    report, _, _ = desktop_run
    names = {Path(p).stem for p in report["screenshots"]}
    assert {"toolbox", "dock_training", "dock_labelling", "installer", "main_window"} <= names
    for path in report["screenshots"]:
        image = QImage(path)
        assert not image.isNull() and image.width() > 100 and image.height() > 100, path


def test_unload_leaves_nothing_behind(desktop_run):
    left = desktop_run[0]["unload"]
    assert left["provider"] is False
    assert left == {"provider": False, "docks": [], "toolbars": [], "actions": [],
                    "map_tool": left["map_tool"]}
    assert desktop_run[0]["docks_map_tool"] == "PolygonDrawTool"
    assert left["map_tool"] != "PolygonDrawTool"
