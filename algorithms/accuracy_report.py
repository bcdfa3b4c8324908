"""Processing algorithm ``landfusion:accuracyreport``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterField,
    QgsProcessingParameterMapLayer,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..core.choices import POLYGON_MODES, SAMPLING_DESIGNS
from .base import LandFusionAlgorithm
from .groups import ACCURACY


class AccuracyReportAlgorithm(LandFusionAlgorithm):
    """Assesses a class map against reference data, with area-adjusted estimates."""

    CLASSIFICATION = "CLASSIFICATION"
    REFERENCE = "REFERENCE"
    CLASS_FIELD = "CLASS_FIELD"
    SAMPLING_DESIGN = "SAMPLING_DESIGN"
    POLYGON_SAMPLES = "POLYGON_SAMPLES"
    MAP_NODATA = "MAP_NODATA"
    TITLE = "TITLE"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_JSON = "OUTPUT_JSON"
    OUTPUT_CSV = "OUTPUT_CSV"
    OVERALL_ACCURACY = "OVERALL_ACCURACY"
    KAPPA = "KAPPA"
    MACRO_F1 = "MACRO_F1"
    AREA_ADJUSTED_OA = "AREA_ADJUSTED_OA"
    SAMPLES = "SAMPLES"

    GROUP = ACCURACY

    def name(self):
        """Returns the algorithm id."""
        return "accuracyreport"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Accuracy report")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Assesses a class map against reference samples and reports accuracy and "
                       "estimated class areas with 95 % confidence intervals.")

    def tags(self):
        """Returns search tags."""
        return self.tr("accuracy,assessment,validation,confusion,error matrix,kappa,f1,"
                       "user's accuracy,producer's accuracy,area,olofsson,stratified,"
                       "confidence interval,reference").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterRasterLayer(
            self.CLASSIFICATION, "Classified raster (map)",
            help="Integer class raster; its classes are the strata and its pixel counts give the "
                 "mapped areas.")
        self._add(QgsProcessingParameterMapLayer(
            self.REFERENCE, self.tr("Reference (points, polygons or class raster)"),
            types=[QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon,
                   QgsProcessing.TypeRaster]),
            "Reference samples: points or polygons with a class field, or a reference class "
            "raster.")
        self._add(QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Reference class field (vector reference)"),
            parentLayerParameterName=self.REFERENCE, optional=True),
            "Field holding the reference class value or class name.")
        self.addParameterEnum(
            self.SAMPLING_DESIGN, "Sampling design of the reference sample", SAMPLING_DESIGNS,
            help="How the reference sample was drawn; selects the estimators.")
        self.addParameterEnum(self.POLYGON_SAMPLES, "Polygon reference", POLYGON_MODES,
                              help="How polygons become samples.")
        self.addParameterInt(self.MAP_NODATA, "Map nodata value (empty: from the raster)",
                             optional=True, advanced=True,
                             help="Pixels with this value are never counted as a class.")
        self.addParameterString(self.TITLE, "Report title", optional=True, advanced=True,
                                help="Heading of the HTML report.")
        self.addParameterFileOutput(
            self.OUTPUT_HTML, "HTML report", "HTML files (*.html)", temporary=True,
            help="Self-contained report: tables and figures, no network needed.")
        self.addParameterFileOutput(
            self.OUTPUT_JSON, "JSON of every number", "JSON files (*.json)", optional=True,
            created=True, help="Every number of the report, machine-readable.")
        self.addParameterFileOutput(
            self.OUTPUT_CSV, "CSV of the matrices", "CSV files (*.csv)", optional=True,
            created=True, help="Error matrices and per-class tables for spreadsheets.")
        for key, label in ((self.OVERALL_ACCURACY, "Overall accuracy (sample counts)"),
                           (self.KAPPA, "Cohen's kappa"), (self.MACRO_F1, "Macro-F1"),
                           (self.AREA_ADJUSTED_OA, "Area-adjusted overall accuracy"),
                           (self.SAMPLES, "Number of samples")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def _reference(self, parameters, context, feedback=None):
        """Returns (path usable by GDAL/OGR, is_vector) for the reference layer."""
        layer = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if layer is None:
            return None, False
        if isinstance(layer, QgsRasterLayer):
            return layer.source(), False
        if isinstance(layer, QgsVectorLayer):
            if layer.providerType() == "ogr" and not layer.subsetString():
                return layer.source(), True
            path, name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, self.REFERENCE, context, ["gpkg"], "gpkg", feedback)
            return (f"{path}|layername={name}" if name else path), True
        return layer.source(), False

    def check(self, parameters, context):
        """Checks that a vector reference has an existing class field."""
        from ..core.errors import InputError

        layer = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if isinstance(layer, QgsVectorLayer):
            field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
            names = ", ".join(f.name() for f in layer.fields()) or "none"
            if not field:
                raise InputError(self.tr("Choose the reference class field (fields of the "
                                         "reference layer: {}).").format(names))
            if field.lower() not in [f.name().lower() for f in layer.fields()]:
                raise InputError(self.tr("The reference layer has no field '{}'; its fields "
                                         "are: {}.").format(field, names))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the report paths and headline numbers."""
        from ..core.accuracy.assess import assess_accuracy

        reference, is_vector = self._reference(parameters, context, feedback)
        outputs = {key: self.parameterAsFileOutput(parameters, key, context) or None
                   for key in (self.OUTPUT_HTML, self.OUTPUT_JSON, self.OUTPUT_CSV)}
        result = assess_accuracy(
            classification=self.parameterAsSourcePath(parameters, self.CLASSIFICATION, context),
            reference=reference,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context)
            if is_vector else None,
            design=self.parameterAsChoice(parameters, self.SAMPLING_DESIGN, context),
            polygon_mode=self.parameterAsChoice(parameters, self.POLYGON_SAMPLES, context),
            output_html=outputs[self.OUTPUT_HTML],
            output_json=outputs[self.OUTPUT_JSON],
            output_csv=outputs[self.OUTPUT_CSV],
            map_nodata=self.parameterAsOptionalInt(parameters, self.MAP_NODATA, context),
            title=self.parameterAsString(parameters, self.TITLE, context) or None,
            **self.callbacks(feedback),
        )
        metrics = result["metrics"]
        estimates = result["area_adjusted"]
        kappa = "undefined" if metrics["kappa"] is None else f"{metrics['kappa']:.3f}"
        feedback.pushInfo(self.tr("Samples: {}; overall accuracy {:.3f}; kappa {}.").format(
            metrics["n"], metrics["overall_accuracy"], kappa))
        if estimates:
            ci = estimates["overall_accuracy_ci95"]
            if ci is None:
                text = self.tr("Area-adjusted overall accuracy {:.3f} (CI undefined).")
            else:
                text = self.tr("Area-adjusted overall accuracy {:.3f} ± {:.3f} (95 % CI).")
            feedback.pushInfo(text.format(estimates["overall_accuracy"], ci))
        answer = dict(outputs)
        answer.update({
            self.OVERALL_ACCURACY: metrics["overall_accuracy"],
            self.KAPPA: metrics["kappa"],
            self.MACRO_F1: metrics["macro_f1"],
            self.AREA_ADJUSTED_OA: estimates["overall_accuracy"] if estimates else None,
            self.SAMPLES: metrics["n"],
        })
        return answer
