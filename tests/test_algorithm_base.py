"""The algorithm base class: enum spellings, option vocabularies, styles, groups, help files."""

import os

import numpy as np
import pytest
import rasterio

from conftest import data_path

L2A_12 = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12"


def test_every_enum_accepts_numbers_keys_and_titles(algorithms):
    """For every enum of every algorithm: index, key and title (any case) mean the same."""
    from landfusion.algorithms import enums

    checked = 0
    for alg in algorithms:
        for definition in alg.parameterDefinitions():
            if definition.type() != "enum":
                continue
            keys = enums.enum_keys(definition)
            for index, (key, title) in enumerate(zip(keys, definition.options())):
                expected = title if definition.usesStaticStrings() else index
                expected = [expected] if definition.allowMultiple() else expected
                spellings = (index, str(index), key, key.upper(), title.lower()) if key \
                    else (index, str(index))  # the empty key ("no preset") is the unset value
                for spelling in spellings:
                    got = enums.normalise(alg, {definition.name(): spelling})
                    assert got[definition.name()] == expected, (alg.name(), spelling)
                checked += 1
            assert enums.unknown_choice(alg, {definition.name(): "no such option"})
    assert checked >= 30


def test_enum_vocabularies_live_in_core(algorithms):
    """Algorithm enums are built from core.choices, in the order the engines read them."""
    from landfusion.core import choices
    from landfusion.core.classification.train import algorithm_key

    assert [algorithm_key(i) for i in range(len(choices.CLASSIFIERS))] == list(choices.CLASSIFIERS)
    by_name = {a.name(): a for a in algorithms}
    design = by_name["accuracyreport"].parameterDefinition("SAMPLING_DESIGN")
    assert list(design.options()) == list(choices.SAMPLING_DESIGNS.titles)
    algorithm = by_name["trainclassifier"].parameterDefinition("ALGORITHM")
    assert list(algorithm.options()) == list(choices.CLASSIFIERS.titles)


def test_indices_by_number_and_by_name_give_the_same_raster(run_algorithm, tmp_path):
    from landfusion.core.indices.formulas import INDICES

    chip = str(data_path("terramind", "S2L2A", "637U_59R_1_3.tif"))
    ndvi, ndwi = list(INDICES).index("NDVI"), list(INDICES).index("NDWI")
    outputs = []
    for spelling in ([ndvi, ndwi], f"{ndvi},{ndwi}", "ndvi,NDWI", ["NDVI", "ndwi"]):
        out = str(tmp_path / f"i{len(outputs)}.tif")
        run_algorithm("landfusion:spectralindices", {
            "INPUT": chip, "INPUT_BANDS": L2A_12, "INDICES": spelling, "OUTPUT": out})
        with rasterio.open(out) as dst:
            outputs.append((dst.descriptions, dst.read()))
    for descriptions, data in outputs:
        assert descriptions == ("NDVI", "NDWI")
        np.testing.assert_array_equal(data, outputs[0][1])


def test_unknown_enum_value_names_the_options(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingException

    chip = str(data_path("terramind", "S2L2A", "637U_59R_1_3.tif"))
    with pytest.raises(QgsProcessingException, match=r"'NDXI' is not an option.*0 = NDVI"):
        run_algorithm("landfusion:spectralindices", {
            "INPUT": chip, "INPUT_BANDS": L2A_12, "INDICES": "NDXI",
            "OUTPUT": str(tmp_path / "x.tif")})
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.qgis_process
def test_enums_by_number_and_name_through_qgis_process(qgis_process, tmp_path):
    """INDICES=0 and INDICES=NDVI both work headless; so do index-stored enums by key."""
    chip = data_path("terramind", "S2L2A", "282D_485L_3_3.tif")
    results = []
    for spelling, compression in (("0", "1"), ("NDVI", "zstd")):
        out = tmp_path / f"ndvi_{spelling}.tif"
        code, result, text = qgis_process("landfusion:spectralindices", {
            "INPUT": chip, "INPUT_BANDS": L2A_12, "INDICES": spelling,
            "COMPRESSION": compression, "OUTPUT": out}, check=False)
        assert code == 0, text[-2000:]
        with rasterio.open(out) as dst:
            assert dst.descriptions == ("NDVI",)
            assert dst.compression.name == "zstd"
            results.append(dst.read(1))
    np.testing.assert_array_equal(results[0], results[1])


def test_probability_and_confidence_outputs_are_styled(qgis_app, tmp_path):
    """The post-processor: .qml for class rasters, ramps for probabilities and confidence."""
    from qgis.core import QgsRasterLayer

    from landfusion.algorithms import styles

    path = tmp_path / "prob.tif"
    profile = {"driver": "GTiff", "dtype": "float32", "count": 2, "width": 8, "height": 8,
               "crs": "EPSG:32631", "transform": rasterio.Affine(10, 0, 0, 0, -10, 80)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.random.default_rng(0).random((2, 8, 8), dtype=np.float32))
    for kind, ramp_end in (("probability", "#fde725"), ("confidence", "#08306b")):
        layer = QgsRasterLayer(str(path), kind)
        assert styles.apply_style(layer, kind, str(path))
        renderer = layer.renderer()
        assert renderer.type() == "singlebandpseudocolor" and renderer.band() == 1
        assert (renderer.classificationMin(), renderer.classificationMax()) == (0.0, 1.0)
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        assert items[-1].color.name() == ramp_end
    # A .qml beside the raster wins (what the engine writes for class rasters).
    layer = QgsRasterLayer(str(path), "x")
    layer.setRenderer(styles.ramp_renderer(layer, "Reds"))
    layer.saveNamedStyle(str(tmp_path / "prob.qml"))
    fresh = QgsRasterLayer(str(path), "y")
    assert styles.apply_style(fresh, "probability", str(path))
    items = fresh.renderer().shader().rasterShaderFunction().colorRampItemList()
    assert items[-1].color.name() == "#67000d"


def test_every_class_probability_and_confidence_output_declares_its_style(algorithms):
    styled = {}
    for alg in algorithms:
        for definition in alg.destinationParameterDefinitions():
            style = (definition.metadata().get("landfusion") or {}).get("style")
            if style:
                styled[(alg.name(), definition.name())] = style
    assert styled == {
        ("classifyraster", "OUTPUT"): "classes",
        ("classifyraster", "OUTPUT_CONFIDENCE"): "confidence",
        ("classifyraster", "OUTPUT_PROBABILITIES"): "probability",
        ("cnnclassify", "OUTPUT"): "classes",
        ("cnnclassify", "OUTPUT_CONFIDENCE"): "confidence",
        ("cnnclassify", "OUTPUT_PROBABILITIES"): "probability",
        ("cloudmask", "OUTPUT"): "classes",
    }


def test_cloud_mask_loaded_into_the_project_is_styled(qgis_app, tmp_path):
    """runAndLoadResults: the SCL cloud mask appears with class names, like classifications."""
    import processing
    from qgis.core import QgsProject

    scl = tmp_path / "scl.tif"
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 1, "width": 6, "height": 2,
               "crs": "EPSG:32631", "transform": rasterio.Affine(20, 0, 0, 0, -20, 40)}
    with rasterio.open(scl, "w", **profile) as dst:
        dst.write(np.array([[[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]], "uint8"))
    result = processing.runAndLoadResults("landfusion:cloudmask", {
        "SCL": str(scl), "OUTPUT": str(tmp_path / "mask.tif")})
    layers = [layer for layer in QgsProject.instance().mapLayers().values()
              if layer.source() == result["OUTPUT"]]
    assert len(layers) == 1
    assert layers[0].renderer().type() == "paletted"
    assert {c.label for c in layers[0].renderer().classes()} >= {"clear", "cloud"}
    QgsProject.instance().removeAllMapLayers()


def test_groups_are_in_workflow_order_with_family_icons(algorithms):
    from landfusion.algorithms.groups import GROUPS

    assert list(GROUPS.values())[0].startswith("1 · ")
    for alg in algorithms:
        assert alg.groupId() in GROUPS, alg.name()
        assert alg.group() == GROUPS[alg.groupId()]
        assert os.path.basename(alg.svgIconPath()) == alg.groupId() + ".svg"
        assert not alg.icon().isNull()
        # Names fit the toolbox's default width.
        assert len(alg.displayName()) <= 30, alg.displayName()


def test_help_lives_in_help_files(algorithms):
    from landfusion.algorithms.base import HELP_DIR

    for alg in algorithms:
        assert os.path.exists(os.path.join(HELP_DIR, alg.name() + ".html")), alg.name()
        text = alg.shortHelpString()
        assert len(text) > 300 and "{" not in text and "<!--" not in text, alg.name()
        for definition in alg.parameterDefinitions():
            assert definition.help(), (alg.name(), definition.name())


def test_former_parameter_ids_are_still_accepted(qgis_app):
    from landfusion.algorithms.cloud_mask import CloudMaskAlgorithm

    alg = CloudMaskAlgorithm()
    alg.initAlgorithm()
    assert alg.normalise_parameters({"DN_OFFSET": -1000})["OFFSET"] == -1000


def test_an_algorithm_that_overrides_processalgorithm_is_still_protected(qgis_app, tmp_path):
    """Future algorithms written the QGIS way get the output check and enum spellings too."""
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    from landfusion.algorithms.base import LandFusionAlgorithm

    class Copy(LandFusionAlgorithm):
        def name(self):
            return "copy"

        def displayName(self):
            return "Copy"

        def initAlgorithm(self, config=None):
            self.addParameterRasterLayer("INPUT", "Input", help="Any raster.")
            self.addParameterEnum("MODE", "Mode", ("fast", "slow"), help="How.")
            self.addParameterRasterOutput("OUTPUT", "Output", help="The copy.")

        def checkParameterValues(self, parameters, context):
            self.checked = parameters["MODE"]
            return True, ""

        def processAlgorithm(self, parameters, context, feedback):
            self.mode = self.parameterAsEnum(parameters, "MODE", context)
            return {"OUTPUT": self.parameterAsOutputLayer(parameters, "OUTPUT", context)}

    source = str(data_path("terramind", "S2L2A", "637U_59R_1_3.tif"))
    alg = Copy()
    alg.initAlgorithm()
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    ok, message = alg.checkParameterValues({"INPUT": source, "MODE": "SLOW",
                                            "OUTPUT": source}, context)
    assert not ok and "(OUTPUT)" in message and "(INPUT)" in message
    with pytest.raises(QgsProcessingException, match="would overwrite"):
        alg.processAlgorithm({"INPUT": source, "MODE": "slow", "OUTPUT": source}, context,
                             feedback)
    ok, _ = alg.checkParameterValues({"INPUT": source, "MODE": "SLOW",
                                      "OUTPUT": str(tmp_path / "c.tif")}, context)
    assert ok and alg.checked == 1
    alg.processAlgorithm({"INPUT": source, "MODE": "Slow", "OUTPUT": str(tmp_path / "c.tif")},
                         context, feedback)
    assert alg.mode == 1
