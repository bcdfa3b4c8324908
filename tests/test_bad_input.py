"""Bad input and faults, as a careful user would try them (issue 11, §1–§6).

Every case runs through ``qgis_process.bin``, several at a time (each case writes into its own
output folder), and asserts:

- the exit status (refused, or done when a problem must be handled rather than refused);
- the key words of the message, and never a Python traceback in place of it;
- that every input file is byte-identical afterwards;
- that the output folder holds only the outputs asked for: nothing half-written, no hidden
  ``.landfusion-*`` temporaries, nothing at all after a refusal.

The free-space check and a few others run through ``processing.run`` (cheaper, and they need a
patched ``shutil.disk_usage``). A case whose fix is not on the main branch yet gets
``pending="<reason>"`` (an ``xfail(strict=True)``), removed when the fix lands.
"""

import csv
import hashlib
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import pytest

from classification_data import TERRAMIND_S2_BANDS, label_polygons, write_stack
from conftest import ROOT, data_path, run_qgis_process

CHIP = "433D_629L_3_1"
S2_NAMES = ",".join(TERRAMIND_S2_BANDS)
WATER_CNN = ROOT / "resources" / "models" / "s1_water_unet.onnx"



@dataclass
class Case:
    """One bad input: the algorithm, its parameters and what the user must see."""

    id: str
    algorithm: str
    parameters: dict
    words: Sequence[str] = ()
    ok: bool = False
    outputs: Sequence[str] = ()
    pending: str = ""
    prepare: Optional[Callable] = None
    check: Optional[Callable] = None
    extra: dict = field(default_factory=dict)


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _snapshot(folder):
    return {p: _digest(os.path.join(folder, p)) for p in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, p))}


def _dead_pid():
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    return pid


# --- inputs -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory, qgis_app):
    """Real chips, files of the wrong kind, a trained model, and rasters that must be refused."""
    import rasterio

    folder = tmp_path_factory.mktemp("bad_input_inputs")
    s2 = folder / "s2.tif"
    shutil.copy(data_path("terramind", "S2L2A", f"{CHIP}.tif"), s2)
    s1 = folder / "s1.tif"
    shutil.copy(data_path("terramind", "S1RTC", f"{CHIP}.tif"), s1)
    lulc = folder / "lulc.tif"
    shutil.copy(data_path("terramind", "LULC", f"{CHIP}.tif"), lulc)
    shutil.copy(data_path("terramind", "LULC", f"{CHIP}.tif.aux.xml"), f"{lulc}.aux.xml")
    write_stack(folder / "s1_named.tif", [(str(s1), ["VV", "VH"])], str(s1))
    stack = write_stack(folder / "stack.tif", [(str(s1), ["VV", "VH"]),
                                               (str(s2), TERRAMIND_S2_BANDS)], str(s1))
    # The same bands, S2 before S1 and unnamed: matched by position, they are garbage.
    with rasterio.open(stack) as src:
        data, profile = src.read(), src.profile
    reversed_path = folder / "stack_reversed_unnamed.tif"
    with rasterio.open(reversed_path, "w", **profile) as dst:
        dst.write(np.concatenate([data[2:], data[:2]]))
    nodata_path = folder / "stack_nodata.tif"
    with rasterio.open(nodata_path, "w", **profile) as dst:
        dst.write(np.full_like(data, profile["nodata"]))
        for i, name in enumerate(["VV", "VH"] + TERRAMIND_S2_BANDS, start=1):
            dst.set_band_description(i, name)
    # Sentinel-2 digital numbers named VV and VH.
    s2_as_s1 = folder / "s2_named_vv_vh.tif"
    with rasterio.open(s2) as src:
        dn = src.read([3, 4]).astype("float32")
        s2_profile = src.profile
    s2_profile.update(count=2, dtype="float32", nodata=None)
    with rasterio.open(s2_as_s1, "w", **s2_profile) as dst:
        dst.write(dn)
        dst.set_band_description(1, "VV")
        dst.set_band_description(2, "VH")
    # A LandFusion stack as coregisterstack names it.
    own = write_stack(folder / "own_stack.tif", [(str(s2), [f"S2_{b}" for b in
                                                            TERRAMIND_S2_BANDS]),
                                                 (str(s1), ["S1_VV_dB", "S1_VH_dB"])], str(s2))
    polygons = label_polygons(str(lulc), folder / "polygons.gpkg", [1, 2, 4, 5, 9], epsg=3857)
    # Class names that differ only by case and spaces.
    from osgeo import ogr

    cased = folder / "cased.gpkg"
    source = ogr.Open(str(polygons))
    polygons_layer = source.GetLayer(0)
    target = ogr.GetDriverByName("GPKG").CreateDataSource(str(cased))
    layer = target.CreateLayer("cased", polygons_layer.GetSpatialRef(), ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("label", ogr.OFTString))
    spellings = {1: ["Water"], 2: ["Forest", "forest ", "FOREST"], 4: ["Crops"], 5: ["Built"],
                 9: ["Range"]}
    for i, feature in enumerate(polygons_layer):
        options = spellings[feature.GetField("class")]
        copy = ogr.Feature(layer.GetLayerDefn())
        copy.SetGeometry(feature.GetGeometryRef().Clone())
        copy.SetField("label", options[i % len(options)])
        layer.CreateFeature(copy)
    layer = target = source = polygons_layer = None
    # Class names that are spreadsheet formulas (category names of a class map).
    from osgeo import gdal

    formulas = folder / "formula_names.tif"
    gdal.Translate(str(formulas), str(lulc))
    dataset = gdal.Open(str(formulas), gdal.GA_Update)
    # Classes 1, 2, 4, 5 and 9 are in the reference polygons.
    names = ["", "=1+2", "+SUM(A1:A2)", "\tTab", "-cmd|' /C calc'!A0",
             "<script>alert(1)</script>", "bare", "snow", "\rCR", "@HYPERLINK(\"x\")"]
    dataset.GetRasterBand(1).SetCategoryNames(names)
    dataset = None
    (folder / "notes.txt").write_text("field notes, not a raster\n")
    (folder / "report.html").write_text("<html><body>a report</body></html>\n")
    (folder / "empty.tif").write_bytes(b"")
    # A model trained on the named stack (small and quick).
    import processing

    model = folder / "model.onnx"
    processing.run("landfusion:trainclassifier", {
        "INPUT": stack, "TRAINING": str(polygons), "CLASS_FIELD": "class", "TREES": 10,
        "MAX_SAMPLES": 300, "FOLDS": 0, "OUTPUT_MODEL": str(model)})
    for leftover in folder.glob("*.aux.xml"):
        if leftover.name != "lulc.tif.aux.xml" and leftover.name != "formula_names.tif.aux.xml":
            leftover.unlink()
    paths = {p.stem if p.suffix != ".xml" else p.name: str(p) for p in folder.iterdir()}
    paths.update(dir=str(folder), model=str(model), water_cnn=str(WATER_CNN))
    return paths


# --- the cases ----------------------------------------------------------------------------------

def _csv_is_safe(folder, case):
    rows = []
    for name in os.listdir(folder):
        if name.endswith(".csv"):
            with open(os.path.join(folder, name), newline="", encoding="utf-8") as handle:
                rows += list(csv.reader(handle))
    assert rows, case.id
    cells = [c for row in rows for c in row]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")
                 or (c[:1] == "-" and not _is_number(c))]
    assert not dangerous, dangerous
    assert any("=1+2" in c for c in cells), "the class name itself is kept, neutralised"


def _html_is_escaped(folder, case):
    with open(os.path.join(folder, "r.html"), encoding="utf-8") as handle:
        page = handle.read()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shapefile_complete(folder, case):
    from osgeo import ogr

    names = set(os.listdir(folder))
    assert {"points.shp", "points.shx", "points.dbf", "points.prj"} <= names, names
    dataset = ogr.Open(os.path.join(folder, "points.shp"))
    assert dataset is not None and dataset.GetLayer(0).GetFeatureCount() > 0


def _vector_opens(name):
    def check(folder, case):
        from osgeo import ogr

        dataset = ogr.Open(os.path.join(folder, name))
        assert dataset is not None, (name, os.listdir(folder))
        assert dataset.GetLayer(0).GetFeatureCount() > 0

    return check


def _driver_is(name, driver):
    def check(folder, case):
        from osgeo import gdal

        dataset = gdal.Open(os.path.join(folder, name))
        assert dataset is not None and dataset.GetDriver().ShortName == driver

    return check


def _stale_removed(folder, case):
    assert not [n for n in os.listdir(folder) if n.startswith(".landfusion-")]


def _plant_stale(folder, case):
    stale = os.path.join(folder, f".landfusion-{_dead_pid()}-k3j9x2.tif")
    with open(stale, "wb") as handle:
        handle.write(b"\0" * 1024)


def _one_forest_class(folder, case):
    import onnx

    props = {p.key: p.value for p in onnx.load(os.path.join(folder, "m.onnx")).metadata_props}
    text = " ".join(props.values())
    spellings = [s for s in ("Forest", "forest ", "FOREST") if f'"name": "{s}"' in text]
    assert len(spellings) == 1, spellings
    assert text.count('"name": "') >= 5


def cases(i):
    """Every case of issue 11, with ``i`` the input paths and '{out}' the case's folder."""
    s2 = {"INPUT": i["s2"], "INPUT_BANDS": S2_NAMES}
    train = {"INPUT": i["stack"], "TRAINING": i["polygons"], "CLASS_FIELD": "class",
             "TREES": 5, "MAX_SAMPLES": 200, "FOLDS": 0}
    accuracy = {"CLASSIFICATION": i["lulc"], "REFERENCE": i["polygons"], "CLASS_FIELD": "class"}
    sample = {"INPUT": i["lulc"], "SAMPLE_SIZE": 20, "ALLOCATION": "equal", "MIN_PER_CLASS": 0}
    out = "{out}"
    return [
        # §1 An output may never overwrite an input or another output.
        Case("overwrite-classify-input", "classifyraster",
             {"INPUT": i["stack"], "MODEL": i["model"], "OUTPUT": i["stack"]},
             ["would overwrite", "OUTPUT", "INPUT"]),
        Case("overwrite-classify-model", "classifyraster",
             {"INPUT": i["stack"], "MODEL": i["model"], "OUTPUT": i["model"]},
             ["would overwrite", "MODEL"]),
        Case("overwrite-two-outputs", "classifyraster",
             {"INPUT": i["stack"], "MODEL": i["model"], "OUTPUT": f"{out}/c.tif",
              "OUTPUT_CONFIDENCE": f"{out}/c.tif"},
             ["would overwrite", "OUTPUT_CONFIDENCE"]),
        Case("overwrite-indices-input", "spectralindices", {**s2, "OUTPUT": i["s2"]},
             ["would overwrite", "INPUT"]),
        Case("overwrite-stack-input", "coregisterstack",
             {"S2": i["s2"], "S2_BANDS": S2_NAMES, "OUTPUT": i["s2"]},
             ["would overwrite", "S2"]),
        Case("overwrite-cloudmask-scl", "cloudmask", {"SCL": i["lulc"], "OUTPUT": i["lulc"]},
             ["would overwrite", "SCL"]),
        Case("overwrite-training-report", "trainclassifier",
             {**train, "OUTPUT_MODEL": f"{out}/m.onnx", "OUTPUT_REPORT": i["polygons"]},
             ["would overwrite", "TRAINING"]),
        Case("overwrite-reference-json", "accuracyreport",
             {**accuracy, "OUTPUT_JSON": i["polygons"], "OUTPUT_HTML": f"{out}/r.html"},
             ["would overwrite", "REFERENCE"]),
        Case("overwrite-map-aux", "accuracyreport",
             {**accuracy, "OUTPUT_HTML": f"{out}/r.html", "OUTPUT_CSV": i["lulc.tif.aux.xml"]},
             ["would overwrite", "CLASSIFICATION"]),
        Case("overwrite-sample-input", "stratifiedsample", {**sample, "OUTPUT": i["lulc"]},
             ["would overwrite", "INPUT"]),
        # §2 Complete outputs in every format offered; extensions honoured or refused.
        Case("sample-shapefile", "stratifiedsample", {**sample, "OUTPUT": f"{out}/points.shp"},
             ok=True, outputs=["points.shp", "points.shx", "points.dbf", "points.prj"],
             check=_shapefile_complete),
        Case("sample-gpkg", "stratifiedsample", {**sample, "OUTPUT": f"{out}/points.gpkg"},
             ok=True, outputs=["points.gpkg"], check=_vector_opens("points.gpkg")),
        Case("sample-geojson", "stratifiedsample",
             {**sample, "OUTPUT": f"{out}/points.geojson"},
             ok=True, outputs=["points.geojson"], check=_vector_opens("points.geojson")),
        Case("sample-flatgeobuf", "stratifiedsample", {**sample, "OUTPUT": f"{out}/points.fgb"},
             ok=True, outputs=["points.fgb"], check=_vector_opens("points.fgb")),
        Case("sample-sqlite", "stratifiedsample", {**sample, "OUTPUT": f"{out}/points.sqlite"},
             ok=True, outputs=["points.sqlite"], check=_vector_opens("points.sqlite")),
        Case("raster-png-refused", "spectralindices", {**s2, "OUTPUT": f"{out}/c.png"},
             ["GeoTIFF", "png"]),
        Case("raster-img-honoured", "spectralindices", {**s2, "OUTPUT": f"{out}/c.img"},
             ok=True, outputs=["c.img"], check=_driver_is("c.img", "HFA")),
        Case("stale-temporaries-removed", "stratifiedsample",
             {**sample, "OUTPUT": f"{out}/points.gpkg"}, ok=True, outputs=["points.gpkg"],
             prepare=_plant_stale, check=_stale_removed),
        # §3 No silent garbage.
        Case("unnamed-reversed-bands", "classifyraster",
             {"INPUT": i["stack_reversed_unnamed"], "MODEL": i["model"],
              "OUTPUT": f"{out}/c.tif"}, ["cannot use this raster", "right order"]),
        Case("s2-numbers-named-vv-vh", "cnnclassify",
             {"INPUT": i["s2_named_vv_vh"], "MODEL_FILE": i["water_cnn"],
              "OUTPUT": f"{out}/c.tif"}, ["digital numbers"]),
        Case("all-nodata-input", "classifyraster",
             {"INPUT": i["stack_nodata"], "MODEL": i["model"], "OUTPUT": f"{out}/c.tif"},
             ["no valid pixel"]),
        Case("class-names-by-case", "trainclassifier",
             {**train, "TRAINING": i["cased"], "CLASS_FIELD": "label",
              "OUTPUT_MODEL": f"{out}/m.onnx"},
             ["differ only by case"], ok=True, outputs=["m.onnx"], check=_one_forest_class),
        Case("indices-of-own-stack", "spectralindices",
             {"INPUT": i["own_stack"], "INDICES": "NDVI", "OUTPUT": f"{out}/ndvi.tif"},
             ok=True, outputs=["ndvi.tif"]),
        # §5 Safe CSV; HTML stays escaped.
        Case("csv-formula-class-names", "accuracyreport",
             {"CLASSIFICATION": i["formula_names"], "REFERENCE": i["polygons"],
              "CLASS_FIELD": "class", "OUTPUT_HTML": f"{out}/r.html",
              "OUTPUT_CSV": f"{out}/r.csv"},
             ok=True, outputs=["r.html", "r.csv"], check=_csv_is_safe),
        Case("html-escaped-class-names", "accuracyreport",
             {"CLASSIFICATION": i["formula_names"], "REFERENCE": i["polygons"],
              "CLASS_FIELD": "class", "OUTPUT_HTML": f"{out}/r.html"},
             ok=True, outputs=["r.html"], check=_html_is_escaped),
        # §6 Messages, never tracebacks: inputs of the wrong kind.
        Case("text-file-as-raster", "spectralindices",
             {"INPUT": i["notes"], "OUTPUT": f"{out}/i.tif"}, ["text file", "not a raster"]),
        Case("html-file-as-raster", "classifyraster",
             {"INPUT": i["report"], "MODEL": i["model"], "OUTPUT": f"{out}/c.tif"},
             ["HTML file", "not a raster"]),
        Case("empty-file-as-raster", "cloudmask", {"SCL": i["empty"], "OUTPUT": f"{out}/m.tif"},
             ["empty file", "not a raster"]),
        Case("raster-as-training-vector", "trainclassifier",
             {**train, "TRAINING": i["s2"], "OUTPUT_MODEL": f"{out}/m.onnx"},
             ["is a raster", "not a vector"]),
        Case("text-file-as-reference", "accuracyreport",
             {**accuracy, "REFERENCE": i["notes"], "OUTPUT_HTML": f"{out}/r.html"},
             ["text file"]),
        Case("missing-input", "coregisterstack",
             {"S2": os.path.join(i["dir"], "nowhere.tif"), "OUTPUT": f"{out}/s.tif"},
             ["nowhere.tif", "does not exist"]),
        Case("text-file-as-model", "classifyraster",
             {"INPUT": i["stack"], "MODEL": i["notes"], "OUTPUT": f"{out}/c.tif"},
             ["notes.txt", "model"]),
        # Outputs in places that cannot hold them.
        Case("output-under-proc", "spectralindices", {**s2, "OUTPUT": "/proc/indices.tif"},
             ["/proc", "does not accept new files"]),
        Case("output-under-sys", "cloudmask", {"SCL": i["lulc"], "OUTPUT": "/sys/mask.tif"},
             ["/sys", "does not accept new files"]),
        Case("output-folder-missing", "stratifiedsample",
             {**sample, "OUTPUT": f"{out}/missing/points.gpkg"},
             ["does not exist", "missing"]),
        Case("output-parent-is-a-file", "trainclassifier",
             {**train, "OUTPUT_MODEL": i["notes"] + "/m.onnx"}, ["is not a folder"]),
        Case("output-is-a-folder", "accuracyreport",
             {**accuracy, "OUTPUT_HTML": "{out}"}, ["is a folder"]),
        # Numbers outside their range, named with the range.
        Case("scale-zero", "spectralindices", {**s2, "SCALE": 0, "OUTPUT": f"{out}/i.tif"},
             ["SCALE", "greater than 0"]),
        Case("scale-negative", "coregisterstack",
             {"S2": i["s2"], "S2_BANDS": S2_NAMES, "S2_SCALE": -10000,
              "OUTPUT": f"{out}/s.tif"}, ["S2_SCALE", "greater than 0"]),
        Case("scale-not-a-number", "spectralindices",
             {**s2, "SCALE": "ten", "OUTPUT": f"{out}/i.tif"}, ["SCALE", "not a number"]),
        Case("tile-size-too-large", "cnnclassify",
             {"INPUT": i["s1_named"], "MODEL_FILE": i["water_cnn"], "TILE_SIZE": 9000,
              "OUTPUT": f"{out}/c.tif"}, ["TILE_SIZE", "8192"]),
        Case("folds-too-many", "trainclassifier",
             {**train, "FOLDS": 50, "OUTPUT_MODEL": f"{out}/m.onnx"}, ["FOLDS", "20"]),
        Case("savi-l-out-of-range", "spectralindices",
             {**s2, "SAVI_L": 2, "OUTPUT": f"{out}/i.tif"}, ["SAVI_L", "between 0 and 1"]),
        Case("sample-size-zero", "stratifiedsample",
             {**sample, "SAMPLE_SIZE": 0, "OUTPUT": f"{out}/p.gpkg"},
             ["SAMPLE_SIZE", "at least 1"]),
        # scikit-learn parameters, refused before any sample is read.
        Case("sklearn-bad-value", "trainclassifier",
             {**train, "PARAMETERS": "n_estimators=-5", "OUTPUT_MODEL": f"{out}/m.onnx"},
             ["n_estimators", "range", "checking parameter values"]),
        Case("sklearn-bad-choice", "trainclassifier",
             {**train, "PARAMETERS": "criterion='purity'", "OUTPUT_MODEL": f"{out}/m.onnx"},
             ["criterion", "gini", "checking parameter values"]),
        Case("sklearn-unknown-name", "trainclassifier",
             {**train, "PARAMETERS": "trees=5", "OUTPUT_MODEL": f"{out}/m.onnx"},
             ["no parameter trees", "n_estimators"]),
        Case("sklearn-not-key-value", "trainclassifier",
             {**train, "PARAMETERS": "deep", "OUTPUT_MODEL": f"{out}/m.onnx"},
             ["key=value"]),
        # Grids and tiles that cannot fit.
        Case("grid-far-too-large", "coregisterstack",
             {"S2": i["s2"], "S2_BANDS": S2_NAMES, "TARGET_RESOLUTION": 0.001,
              "OUTPUT": f"{out}/s.tif"}, ["2,240,000 x 2,240,000 pixels", "GB"]),
        Case("grid-larger-than-disk", "coregisterstack",
             {"S2": i["s2"], "S2_BANDS": S2_NAMES, "TARGET_RESOLUTION": 0.01,
              "OUTPUT": f"{out}/s.tif"}, ["No space left", "needed", "free"]),
        Case("tile-exceeds-memory", "cnnclassify",
             {"INPUT": i["s1_named"], "MODEL_FILE": i["water_cnn"], "TILE_SIZE": 8192,
              "BATCH_SIZE": 256, "OUTPUT": f"{out}/c.tif"},
             ["Tile size 8192", "memory", "TILE_SIZE"]),
        # A model given to the algorithm that does not run it.
        Case("pixel-model-to-cnn", "cnnclassify",
             {"INPUT": i["stack"], "MODEL_FILE": i["model"], "OUTPUT": f"{out}/c.tif"},
             ["classifyraster"]),
        Case("cnn-to-classifyraster", "classifyraster",
             {"INPUT": i["s1_named"], "MODEL": i["water_cnn"], "OUTPUT": f"{out}/c.tif"},
             ["cnnclassify"]),
    ]


def _case_ids():
    fake = {k: "" for k in ("s2", "s1", "stack", "polygons", "lulc", "lulc.tif.aux.xml", "model",
                            "stack_reversed_unnamed", "s2_named_vv_vh", "stack_nodata",
                            "own_stack", "formula_names", "s1_named", "cased", "notes", "report", "empty",
                            "dir", "water_cnn")}
    return [pytest.param(c.id, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.pending)]
                         if c.pending else []) for c in cases(fake)]


def _run(case, folder):
    parameters = {k: v.format(out=folder) if isinstance(v, str) else v
                  for k, v in case.parameters.items()}
    if case.prepare:
        case.prepare(folder, case)
    code, _, text = run_qgis_process(f"landfusion:{case.algorithm}", parameters, check=False)
    return code, text


@pytest.fixture(scope="module")
def results(inputs, tmp_path_factory, request):
    """Runs the selected cases through qgis_process, three at a time.

    Returns {"cases": {id: (case, code, text, folder)}, "before"/"after": input digests}.
    """
    selected = {item.callspec.params.get("case_id") for item in request.session.items
                if hasattr(item, "callspec")}
    chosen = [c for c in cases(inputs) if c.id in selected] or cases(inputs)
    before = _snapshot(inputs["dir"])
    root = tmp_path_factory.mktemp("bad_input_outputs")
    folders = {}
    for case in chosen:
        folders[case.id] = str(root / case.id)
        os.makedirs(folders[case.id])
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {c.id: (c, pool.submit(_run, c, folders[c.id])) for c in chosen}
        answers = {k: (case, *future.result(), folders[k]) for k, (case, future) in
                   futures.items()}
    return {"cases": answers, "before": before, "after": _snapshot(inputs["dir"])}


@pytest.mark.qgis_process
def test_suite_has_every_kind_of_case(inputs):
    assert len(cases(inputs)) >= 40


@pytest.mark.qgis_process
@pytest.mark.parametrize("case_id", _case_ids())
def test_bad_input(results, case_id):
    case, code, text, folder = results["cases"][case_id]
    assert "Traceback" not in text, text[-3000:]
    if case.ok:
        assert code == 0, text[-3000:]
    else:
        assert code != 0, text[-3000:]
    lowered = text.lower()
    missing = [w for w in case.words if w.lower() not in lowered]
    assert not missing, (missing, text[-3000:])
    left = sorted(os.listdir(folder))
    assert not [n for n in left if n.startswith(".")], left
    if case.ok:
        unexpected = [n for n in left if n not in case.outputs
                      and not any(n.startswith(os.path.splitext(o)[0] + ".") for o in
                                  case.outputs)]
        assert not unexpected and set(case.outputs) <= set(left), left
        if case.check:
            case.check(folder, case)
    else:
        assert left == [], left


@pytest.mark.qgis_process
def test_inputs_are_byte_identical_after_every_case(results):
    """Every input file is unchanged; the only new files are GDAL's .aux.xml statistics QGIS
    writes beside a raster it opened."""
    before, after = results["before"], results["after"]
    assert {k: after.get(k) for k in before} == before
    assert all(n.endswith(".aux.xml") for n in set(after) - set(before)), set(after) - set(before)


# --- through processing.run -------------------------------------------------------------------

def _free_space(monkeypatch, free):
    """Makes every disk report ``free`` bytes free."""
    real = shutil.disk_usage

    def patched(path):
        usage = real(path)
        return type(usage)(usage.total, usage.total - free, free)

    monkeypatch.setattr(shutil, "disk_usage", patched)


def test_full_disk_is_refused_before_running(inputs, run_algorithm, tmp_path, monkeypatch):
    """'No space left: N MB needed, M MB free', estimated from grid, bands and data type."""
    from qgis.core import QgsProcessingException

    _free_space(monkeypatch, 100 * 1024)
    output = tmp_path / "indices.tif"
    with pytest.raises(QgsProcessingException) as error:
        run_algorithm("landfusion:spectralindices", {
            "INPUT": inputs["s2"], "INPUT_BANDS": S2_NAMES, "OUTPUT": str(output)})
    message = str(error.value)
    # 224 x 224 pixels x 4 indices x float32 = 0.8 MB.
    assert "No space left" in message and "0.8 MB needed" in message and "0.1 MB free" in message
    assert os.listdir(tmp_path) == []
    # Probabilities count one band per class of the model: 224 x 224 x 5 x 4 bytes = 1.0 MB.
    with pytest.raises(QgsProcessingException, match=r"1\.0 MB needed .*p\.tif"):
        run_algorithm("landfusion:classifyraster", {
            "INPUT": inputs["stack"], "MODEL": inputs["model"], "OUTPUT": str(tmp_path / "c.tif"),
            "OUTPUT_PROBABILITIES": str(tmp_path / "p.tif")})
    assert os.listdir(tmp_path) == []


def test_enough_disk_runs(inputs, run_algorithm, tmp_path, monkeypatch):
    """The estimate does not refuse what fits: 0.9 MB free holds the 0.8 MB of indices."""
    _free_space(monkeypatch, 900 * 1024)
    result = run_algorithm("landfusion:spectralindices", {
        "INPUT": inputs["s2"], "INPUT_BANDS": S2_NAMES, "OUTPUT": str(tmp_path / "i.tif")})
    assert os.path.exists(result["OUTPUT"])


def test_read_only_folder_is_refused(inputs, run_algorithm, tmp_path):
    """A folder without write permission (not testable as the super-user, who may write)."""
    from qgis.core import QgsProcessingException

    if os.geteuid() == 0:
        pytest.skip("the super-user can write into a read-only folder")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(QgsProcessingException, match="does not accept new files"):
            run_algorithm("landfusion:cloudmask", {"SCL": inputs["lulc"],
                                                   "OUTPUT": str(folder / "m.tif")})
    finally:
        folder.chmod(0o755)


def test_unexpected_errors_are_a_message_not_a_traceback(inputs, run_algorithm, tmp_path,
                                                         monkeypatch):
    """A failure LandFusion did not foresee still reads as a sentence naming the algorithm."""
    from qgis.core import QgsProcessingException

    from landfusion.core.indices import compute

    def broken(**kwargs):
        raise KeyError("band")

    monkeypatch.setattr(compute, "compute_spectral_indices", broken)
    with pytest.raises(QgsProcessingException,
                       match=r"Spectral indices \(S2\) stopped on an unexpected error: KeyError"):
        run_algorithm("landfusion:spectralindices", {
            "INPUT": inputs["s2"], "INPUT_BANDS": S2_NAMES, "OUTPUT": str(tmp_path / "i.tif")})


# --- §4 interrupted runs ----------------------------------------------------------------------

@pytest.mark.qgis_process
def test_sigterm_during_a_run_leaves_nothing(tmp_path):
    """SIGTERM while the output is being written: the run stops and leaves no temporary."""
    from cnn_fixtures import write_raster

    rng = np.random.default_rng(0)
    big = write_raster(str(tmp_path / "big.tif"),
                       rng.integers(1, 10000, (4, 3000, 3000), dtype="int16"),
                       ["B02", "B03", "B04", "B08"])
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "qgis_process.sh"), "run", "landfusion:spectralindices", "--",
         f"INPUT={big}", "COMPRESSION=ZSTD", f"OUTPUT={out / 'i.tif'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not os.listdir(out):
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    text, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in text
    assert os.listdir(out) == [], os.listdir(out)
