"""The installable zip: complete for the QGIS plugin repository, nothing missing, nothing extra."""

import configparser
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def package():
    """Builds the zip with scripts/package.sh and returns (path, {name: bytes})."""
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "package.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    path = ROOT / proc.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    return path, files


def test_zip_has_one_plugin_folder_with_the_runtime_files(package):
    path, files = package
    assert path.stat().st_size < MAX_BYTES
    assert {name.split("/")[0] for name in files} == {"landfusion"}
    names = {name[len("landfusion/"):] for name in files}
    for required in ("__init__.py", "plugin.py", "metadata.txt", "LICENSE", "README.md",
                     "algorithms/provider.py", "core/dependencies.py",
                     "core/package_installer.py", "ui/__init__.py",
                     "resources/icons/landfusion.svg", "scripts/write_model_metadata.py"):
        assert required in names, f"{required} is missing from the zip"
    unwanted = [n for n in names if n.startswith(("tests/", "bench/", "training/", ".ci/", ".qgis/"))
                or "__pycache__" in n or n.endswith((".pyc", ".aux.xml"))]
    assert unwanted == []


def test_zip_license_is_gpl2_or_later(package):
    text = package[1]["landfusion/LICENSE"].decode()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 2, June 1991" in text
    assert "any later version" in text


def test_zip_ships_model_cards_only_with_their_models(package):
    names = {name[len("landfusion/"):] for name in package[1]}
    cards = [n for n in names if n.startswith("resources/models/")
             and n.endswith((".md", ".metrics.json")) and not n.endswith("README.md")]
    assert cards, "the bundled models' cards are missing"
    for card in cards:
        model = re.sub(r"(\.metrics\.json|\.md)$", ".onnx", card)
        assert model in names, f"{card} describes {model}, which is not shipped"
    for model in (n for n in names if n.endswith(".onnx")):
        assert model[:-len(".onnx")] + ".md" in names, f"{model} ships without its card"


def test_every_script_the_plugin_mentions_is_shipped(package):
    files = package[1]
    names = {name[len("landfusion/"):] for name in files}
    mentioned = set()
    for name, data in files.items():
        if name.endswith((".py", ".md", ".txt")):
            mentioned.update(re.findall(r"scripts/[A-Za-z0-9_]+\.py", data.decode("utf-8")))
    # the README's development section documents checkout-only scripts (demo, setup, ...);
    # what help texts and error messages point to must be there
    code_mentions = set()
    for name, data in files.items():
        if name.endswith(".py"):
            code_mentions.update(re.findall(r"scripts/[A-Za-z0-9_]+\.py", data.decode("utf-8")))
    assert code_mentions, "expected the help to mention scripts/write_model_metadata.py"
    assert sorted(code_mentions - names) == []
    assert "scripts/write_model_metadata.py" in mentioned


def test_shipped_metadata_is_complete_for_the_plugin_repository(package):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(package[1]["landfusion/metadata.txt"].decode("utf-8"))
    general = parser["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author",
                "email", "repository", "tracker", "homepage", "tags", "category", "changelog",
                "icon", "hasProcessingProvider", "experimental", "deprecated"):
        assert general.get(key, "").strip(), f"metadata.txt: {key} is empty"
    for key in ("repository", "tracker", "homepage"):
        assert general[key].startswith("https://"), key
    assert general["category"] in ("Analysis", "Raster", "Vector", "Database", "Web", "Mesh")
    assert general["version"] in general["changelog"]
    assert f"landfusion/{general['icon']}" in package[1]


def test_shipped_metadata_script_runs_from_the_installed_layout(package, tmp_path):
    """scripts/write_model_metadata.py imports the plugin from its installed folder."""
    with zipfile.ZipFile(package[0]) as archive:
        archive.extractall(tmp_path)
    model = tmp_path / "landfusion" / "resources" / "models" / "s1_water_unet.onnx"
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "python"),
                           str(tmp_path / "landfusion" / "scripts" / "write_model_metadata.py"),
                           str(model), "--show"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "VV" in proc.stdout and "water" in proc.stdout
    assert not (tmp_path / "landfusion" / ".qgis").exists()
