"""The dependency table, the private-folder installer and the refusal to run without packages."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from landfusion.core import dependencies, package_installer
from landfusion.core.dependencies import Dependency
from wheels import make_wheel

ROOT = Path(__file__).resolve().parents[1]
QGIS_PYTHON = "/usr/bin/python3"  # the Python QGIS 3.22 runs on Debian 12


def qgis_numpy() -> str:
    """Returns the version and location of the numpy QGIS's Python imports."""
    return subprocess.run([QGIS_PYTHON, "-c", "import numpy; print(numpy.__version__, numpy.__file__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def wheels(tmp_path):
    """A local wheel folder: lfprobea (needs lfprobeb and numpy), lfprobeb, lfprobenp2."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "lfprobea", "1.0", ["lfprobeb>=1.0", "numpy>=1.20"])
    make_wheel(folder, "lfprobeb", "1.1")
    make_wheel(folder, "lfprobenp2", "1.0", ["numpy>=2"])
    return folder


@pytest.mark.skipif(not os.path.isfile(QGIS_PYTHON), reason="QGIS's Python is not /usr/bin/python3")
def test_install_into_a_private_folder_keeps_qgis_numpy(tmp_path, wheels, monkeypatch):
    before = qgis_numpy()
    target = tmp_path / "profile" / "python" / "landfusion-packages" / "3.11"
    lines = []
    installed = package_installer.install(["lfprobea>=1.0"], str(target), python=QGIS_PYTHON,
                                          log=lines.append,
                                          extra_pip_args=["--no-index", "--find-links",
                                                          str(wheels)])
    assert sorted(installed) == ["lfprobea==1.0", "lfprobeb==1.1"]
    assert (target / "lfprobea" / "__init__.py").is_file()
    assert (target / "lfprobeb" / "__init__.py").is_file()
    # numpy was a requirement, but QGIS's numpy satisfies it: nothing numpy in the folder
    assert not [p.name for p in target.iterdir() if p.name.lower().startswith("numpy")]
    assert any("numpy==" in line for line in lines), "the numpy pin is not logged"
    assert qgis_numpy() == before
    assert package_installer.verify(["lfprobea", "lfprobeb"], str(target),
                                    python=QGIS_PYTHON) == []
    # the module can be used from this process once the folder is on sys.path
    assert str(target) in sys.path
    import lfprobeb

    assert lfprobeb.__version__ == "1.1"
    # an older copy earlier on the path would shadow the private folder: said, with the fix
    shadow = tmp_path / "shadow" / "lfprobeb"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("__version__ = '0.5'\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    problems = package_installer.verify([Dependency("lfprobeb", "lfprobeb", "1.0", "testing")],
                                        str(target), python=QGIS_PYTHON)
    assert len(problems) == 1 and "version 0.5 from" in problems[0]
    assert "remove that copy" in problems[0]
    monkeypatch.delenv("PYTHONPATH")
    # a second run finds everything installed and does nothing
    assert package_installer.install(["lfprobea>=1.0"], str(target), python=QGIS_PYTHON,
                                     log=lines.append,
                                     extra_pip_args=["--no-index", "--find-links",
                                                     str(wheels)]) == []


@pytest.mark.skipif(not os.path.isfile(QGIS_PYTHON), reason="QGIS's Python is not /usr/bin/python3")
def test_a_package_that_needs_another_numpy_is_refused(tmp_path, wheels):
    before = qgis_numpy()
    target = tmp_path / "private"
    with pytest.raises(package_installer.InstallError, match="could not resolve"):
        package_installer.install(["lfprobenp2"], str(target), python=QGIS_PYTHON,
                                  log=lambda s: None,
                                  extra_pip_args=["--no-index", "--find-links", str(wheels)])
    assert list(target.iterdir()) == []
    assert qgis_numpy() == before


@pytest.mark.skipif(not os.path.isfile(QGIS_PYTHON), reason="QGIS's Python is not /usr/bin/python3")
def test_command_line_install_the_message_points_to(tmp_path, wheels):
    """The command headless users are told to run works with QGIS's Python."""
    target = tmp_path / "private"
    proc = subprocess.run([QGIS_PYTHON, str(ROOT / "core" / "dependencies.py"), "install",
                           "--target", str(target), "--find-links", str(wheels), "lfprobea"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Installed into {target}" in proc.stdout
    assert (target / "lfprobea").is_dir() and (target / "lfprobeb").is_dir()


def test_python_candidates_per_platform():
    linux = package_installer.python_candidates("/usr/bin/qgis", "/usr", "linux", (3, 11))
    assert linux[0] == "/usr/bin/python3.11"
    windows = package_installer.python_candidates(
        "C:/QGIS 3.22/bin/qgis-bin.exe", "C:/QGIS 3.22/apps/Python39", "win32", (3, 9))
    assert windows[0] == "C:/QGIS 3.22/apps/Python39/python.exe"
    assert "C:/QGIS 3.22/bin/python3.exe" in windows
    mac = package_installer.python_candidates("/Applications/QGIS.app/Contents/MacOS/QGIS",
                                         "/Applications/QGIS.app/Contents/Frameworks/Py", "darwin",
                                         (3, 9))
    assert mac[0] == "/Applications/QGIS.app/Contents/MacOS/bin/python3.9"
    # a python3 from PATH outside QGIS's prefix (pyenv) comes last
    other = package_installer.python_candidates("/opt/pyenv/shims/python3", "/usr", "linux",
                                                (3, 11))
    assert other[0] == "/usr/bin/python3.11" and other[-1] == "/opt/pyenv/shims/python3"
    assert package_installer.find_python() is not None


def test_private_folder_is_per_profile_and_python_version(tmp_path):
    folder = package_installer.private_site_dir(str(tmp_path / "profiles" / "default"), (3, 11))
    assert folder == str(tmp_path / "profiles" / "default" / "python" / "landfusion-packages" / "3.11")
    assert not package_installer.activate(folder)  # absent: not put on the path
    os.makedirs(folder)
    try:
        assert package_installer.activate(folder) and sys.path[-1] == folder
    finally:
        sys.path.remove(folder)


def test_table_names_who_needs_what():
    by_name = {d.pip_name: d for d in dependencies.DEPENDENCIES}
    assert by_name["torch"].optional and by_name["torch"].needed_by == ("traincnn",)
    assert dependencies.needs(by_name["onnxruntime"], "classifyraster")
    assert not dependencies.needs(by_name["onnxruntime"], "spectralindices")
    assert dependencies.needs(by_name["rasterio"], "spectralindices")
    for name in ("numpy", "GDAL", "rasterio"):
        assert not by_name[name].from_pip, f"{name} must never be installed with pip"
    assert dependencies.missing() == []  # everything is installed here
    assert dependencies.missing_message("classifyraster") == ""


FAKE = Dependency("lf-absent-package", "lf_absent_package", "1.0", "testing the refusal",
                  ("classifyraster",))


def test_algorithm_refuses_to_run_naming_the_package(run_algorithm, monkeypatch, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingException

    monkeypatch.setattr(dependencies, "DEPENDENCIES", dependencies.DEPENDENCIES + (FAKE,))
    alg = QgsApplication.processingRegistry().algorithmById("landfusion:classifyraster")
    ok, message = alg.canExecute()
    assert not ok
    assert "lf-absent-package >= 1.0 for testing the refusal" in message
    assert "Install Python dependencies" in message and "dependencies.py\" install" in message
    other = QgsApplication.processingRegistry().algorithmById("landfusion:spectralindices")
    assert other.canExecute() == (True, "")
    with pytest.raises(QgsProcessingException, match="lf-absent-package"):
        run_algorithm("landfusion:classifyraster",
                      {"INPUT": str(tmp_path / "x.tif"), "MODEL": str(tmp_path / "m.onnx"),
                       "OUTPUT": str(tmp_path / "out.tif")})


@pytest.mark.qgis_process
def test_qgis_process_fails_with_what_to_install(tmp_path):
    """Headless: no prompt, the run fails before any work with the install instructions."""
    blocked = tmp_path / "blocked" / "sklearn"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    from osgeo import gdal, ogr, osr

    raster = tmp_path / "s2.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(raster), 8, 8, 2, gdal.GDT_Float32)
    ds.SetGeoTransform((500000, 10, 0, 5000000, 0, -10))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    ds = None
    vector = tmp_path / "training.gpkg"
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(vector))
    layer = source.CreateLayer("training", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("cid", ogr.OFTInteger))
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetField("cid", 1)
    feature.SetGeometry(ogr.CreateGeometryFromWkt(
        "POLYGON((500010 4999990,500040 4999990,500040 4999960,500010 4999960,500010 4999990))"))
    layer.CreateFeature(feature)
    source = None
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "blocked"),
               LANDFUSION_QGIS_STATE=str(tmp_path / "state"))
    proc = subprocess.run(
        [str(ROOT / "scripts" / "qgis_process.sh"), "run", "landfusion:trainclassifier", "--",
         f"INPUT={raster}", f"TRAINING={vector}", "CLASS_FIELD=cid",
         f"OUTPUT_MODEL={tmp_path / 'model.onnx'}"], capture_output=True, text=True, timeout=600,
        env=env, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "landfusion:trainclassifier needs scikit-learn >= 1.2" in output
    private = tmp_path / "state" / "home" / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" \
        / "default" / "python" / "landfusion-packages"
    assert f'install --target "{private}' in output
    assert "sudo apt install python3-sklearn" in output
    assert not (tmp_path / "model.onnx").exists()
