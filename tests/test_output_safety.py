"""No output may overwrite an input or another output (issue 11 §1), and enum spellings.

Every case runs through ``processing.run``; one per algorithm also through ``qgis_process``. Each
asserts the refusal names both parameters and that every input file is byte-identical afterwards.
"""

import hashlib
import shutil

import pytest

from classification_data import label_polygons
from conftest import data_path

CHIP = "433D_629L_3_1"


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Copies of real chips (an S2 scene, a class map), labelled polygons and a model file."""
    tmp = tmp_path_factory.mktemp("safety")
    s2 = tmp / "s2.tif"
    shutil.copy(data_path("terramind", "S2L2A", f"{CHIP}.tif"), s2)
    classes = tmp / "lulc.tif"
    shutil.copy(data_path("terramind", "LULC", f"{CHIP}.tif"), classes)
    shutil.copy(data_path("terramind", "LULC", f"{CHIP}.tif.aux.xml"), f"{classes}.aux.xml")
    polygons = label_polygons(str(classes), tmp / "polygons.gpkg", [1, 2, 4, 5, 9], epsg=3857)
    model = tmp / "model.onnx"
    model.write_bytes(b"not a real model: the output check runs before the model is read")
    # A shapefile, whose parts must survive too.
    from osgeo import gdal

    gdal.VectorTranslate(str(tmp / "polygons.shp"), str(polygons), format="ESRI Shapefile")
    return {"tmp": tmp, "s2": str(s2), "classes": str(classes), "polygons": str(polygons),
            "model": str(model), "shp": str(tmp / "polygons.shp")}


def _snapshot(folder):
    return {p.name: _digest(p) for p in folder.iterdir() if p.is_file()}


def _assert_untouched(before, folder, case):
    """Every file is byte-identical; new files are only the .aux.xml QGIS writes for a raster
    it opened (GDAL's auxiliary metadata, not LandFusion output)."""
    after = _snapshot(folder)
    assert {k: after.get(k) for k in before} == before, case
    new = set(after) - set(before)
    assert all(n.endswith(".tif.aux.xml") for n in new), (case, new)


def _cases(f):
    """(algorithm, parameters, output parameter, clashing parameter) for every issue case."""
    t = f["tmp"]
    return [
        ("classifyraster", {"INPUT": f["s2"], "MODEL": f["model"], "OUTPUT": f["s2"]},
         "OUTPUT", "INPUT"),
        ("classifyraster", {"INPUT": f["s2"], "MODEL": f["model"], "OUTPUT": f["model"]},
         "OUTPUT", "MODEL"),
        ("classifyraster", {"INPUT": f["s2"], "MODEL": f["model"], "OUTPUT": str(t / "c.tif"),
                            "OUTPUT_CONFIDENCE": str(t / "c.tif")},
         "OUTPUT", "OUTPUT_CONFIDENCE"),
        # The class style c.qml of OUTPUT would be overwritten by the style of c.vrt.
        ("classifyraster", {"INPUT": f["s2"], "MODEL": f["model"], "OUTPUT": str(t / "c.tif"),
                            "OUTPUT_PROBABILITIES": str(t / "c.vrt")},
         "OUTPUT", "OUTPUT_PROBABILITIES"),
        ("spectralindices", {"INPUT": f["s2"], "OUTPUT": f["s2"]}, "OUTPUT", "INPUT"),
        ("coregisterstack", {"S2": [f["s2"]], "OUTPUT": f["s2"]}, "OUTPUT", "S2"),
        ("cloudmask", {"INPUT": f["s2"], "OUTPUT": f["s2"]}, "OUTPUT", "INPUT"),
        ("cloudmask", {"SCL": f["classes"], "OUTPUT": f["classes"]}, "OUTPUT", "SCL"),
        ("trainclassifier", {"INPUT": f["s2"], "TRAINING": f["polygons"], "CLASS_FIELD": "class",
                             "OUTPUT_MODEL": f["s2"]}, "OUTPUT_MODEL", "INPUT"),
        ("trainclassifier", {"INPUT": f["s2"], "TRAINING": f["polygons"], "CLASS_FIELD": "class",
                             "OUTPUT_MODEL": str(t / "m.onnx"), "OUTPUT_REPORT": f["polygons"]},
         "OUTPUT_REPORT", "TRAINING"),
        ("accuracyreport", {"CLASSIFICATION": f["classes"], "REFERENCE": f["polygons"],
                            "CLASS_FIELD": "class", "OUTPUT_JSON": f["polygons"],
                            "OUTPUT_HTML": str(t / "r.html")},
         "OUTPUT_JSON", "REFERENCE"),
        ("accuracyreport", {"CLASSIFICATION": f["classes"], "REFERENCE": f["polygons"],
                            "CLASS_FIELD": "class", "OUTPUT_HTML": f["classes"]},
         "OUTPUT_HTML", "CLASSIFICATION"),
        ("accuracyreport", {"CLASSIFICATION": f["classes"], "REFERENCE": f["polygons"],
                            "CLASS_FIELD": "class", "OUTPUT_CSV": f["classes"]},
         "OUTPUT_CSV", "CLASSIFICATION"),
        # A side file: the .dbf of the shapefile reference is one of its parts.
        ("accuracyreport", {"CLASSIFICATION": f["classes"], "REFERENCE": f["shp"],
                            "CLASS_FIELD": "class", "OUTPUT_CSV": f["shp"][:-4] + ".dbf",
                            "OUTPUT_HTML": str(t / "r.html")},
         "OUTPUT_CSV", "REFERENCE"),
        # The .aux.xml of the class map (category names) is a side file of the input.
        ("accuracyreport", {"CLASSIFICATION": f["classes"], "REFERENCE": f["polygons"],
                            "CLASS_FIELD": "class", "OUTPUT_JSON": f["classes"][:-4] + ".json",
                            "OUTPUT_HTML": str(t / "r.html"),
                            "OUTPUT_CSV": f["classes"] + ".aux.xml"},
         "OUTPUT_CSV", "CLASSIFICATION"),
        ("stratifiedsample", {"INPUT": f["classes"], "OUTPUT": f["classes"]}, "OUTPUT", "INPUT"),
    ]


def _assert_refused(message, output, other):
    assert "would overwrite" in message, message
    assert f"({output})" in message and f"({other})" in message, message


def test_outputs_never_overwrite_inputs_through_processing_run(files, run_algorithm):
    from qgis.core import QgsProcessingException

    before = _snapshot(files["tmp"])
    for algorithm, parameters, output, other in _cases(files):
        with pytest.raises(QgsProcessingException, match="would overwrite") as error:
            run_algorithm(f"landfusion:{algorithm}", parameters)
        _assert_refused(str(error.value), output, other)
        _assert_untouched(before, files["tmp"], (algorithm, parameters))


@pytest.mark.qgis_process
def test_outputs_never_overwrite_inputs_through_qgis_process(files, qgis_process):
    before = _snapshot(files["tmp"])
    seen = set()
    for algorithm, parameters, output, other in _cases(files):
        if algorithm in seen:
            continue
        seen.add(algorithm)
        code, _, text = qgis_process(f"landfusion:{algorithm}", parameters, check=False)
        assert code != 0, (algorithm, text[-2000:])
        _assert_refused(text, output, other)
        _assert_untouched(before, files["tmp"], algorithm)


def test_distinct_outputs_and_inputs_pass_the_check(files, qgis_app):
    """The check must not refuse what is safe: defaults, distinct names, sidecars of others."""
    from qgis.core import QgsApplication, QgsProcessingContext

    registry = QgsApplication.processingRegistry()
    context = QgsProcessingContext()
    t = files["tmp"]
    for algorithm, parameters in [
        ("classifyraster", {"INPUT": files["s2"], "MODEL": files["model"]}),
        ("classifyraster", {"INPUT": files["s2"], "MODEL": files["model"],
                            "OUTPUT": str(t / "a.tif"), "OUTPUT_CONFIDENCE": str(t / "b.tif"),
                            "OUTPUT_PROBABILITIES": str(t / "p.tif")}),
        ("accuracyreport", {"CLASSIFICATION": files["classes"], "REFERENCE": files["polygons"],
                            "CLASS_FIELD": "class", "OUTPUT_HTML": str(t / "r.html"),
                            "OUTPUT_JSON": str(t / "r.json"), "OUTPUT_CSV": str(t / "r.csv")}),
    ]:
        alg = registry.createAlgorithmById(f"landfusion:{algorithm}")
        from landfusion.algorithms import safety

        assert safety.output_conflict(alg, parameters, context) is None, (algorithm, parameters)


def test_training_report_sidecar_is_protected(files, qgis_app):
    """The training report writes <report>.json: it may not replace the reference JSON."""
    from qgis.core import QgsApplication, QgsProcessingContext

    from landfusion.algorithms import safety

    json_input = files["tmp"] / "labels.json"
    from osgeo import gdal

    gdal.VectorTranslate(str(json_input), files["polygons"], format="GeoJSON")
    alg = QgsApplication.processingRegistry().createAlgorithmById("landfusion:trainclassifier")
    message = safety.output_conflict(alg, {
        "INPUT": files["s2"], "TRAINING": str(json_input), "CLASS_FIELD": "class",
        "OUTPUT_MODEL": str(files["tmp"] / "m.onnx"),
        "OUTPUT_REPORT": str(files["tmp"] / "labels.html")}, QgsProcessingContext())
    assert message and "OUTPUT_REPORT" in message and "TRAINING" in message
    assert "labels.json" in message
