"""Processing algorithm ``landfusion:accuracyreport``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
    QgsVectorLayer,
)

from .base import LandFusionAlgorithm

DESIGNS = ("stratified", "simple", "unknown")
POLYGON_MODES = ("majority", "centroid", "all_pixels")


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

    GROUP = "Accuracy assessment"
    GROUP_ID = "accuracy"

    def name(self):
        """Returns the algorithm id."""
        return "accuracyreport"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Accuracy report (error matrix, area-adjusted accuracy and area)")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Assesses a class map against reference samples and reports accuracy and "
                       "estimated class areas with 95 % confidence intervals.")

    def tags(self):
        """Returns search tags."""
        return self.tr("accuracy,assessment,validation,confusion,error matrix,kappa,f1,"
                       "user's accuracy,producer's accuracy,area,olofsson,stratified,"
                       "confidence interval,reference").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Compares a classified raster (the map) with reference data and writes an HTML report, "
            "a CSV of the matrices and a JSON of every number.<br><br>"
            "<b>Error matrix</b>: rows = map classes, columns = reference classes (as in Olofsson "
            "et al. 2014). Reported: overall accuracy, Cohen's kappa, user's and producer's "
            "accuracy, F1 and macro-F1 from the sample counts.<br>"
            "<b>Area-adjusted estimates</b> (stratified or simple random designs): the error "
            "matrix in estimated area proportions, overall / user's / producer's accuracy and the "
            "area of each class in hectares, each with a 95 % confidence interval (Olofsson et "
            "al. 2014, Remote Sensing of Environment 148:42-57). Mapped areas come from the "
            "classified raster's pixel counts and pixel size. With an unknown design only the "
            "sample-count metrics are given.<br>"
            "<b>Reference</b>: points or polygons with a class field (class value, or class name "
            "matching the raster's category names), or a reference class raster. Polygons give "
            "one sample each (majority map class inside, or map class at the centroid), or all "
            "their pixels, which are not independent samples. Layers in another CRS are "
            "reprojected. Samples outside the map, on nodata or without a label are skipped and "
            "counted in the report.<br>"
            "<b>Classes</b> are named by the raster's category names (as written by LandFusion "
            "classifiers), else by value. Use <i>Stratified random sample</i> to draw reference "
            "points that fit the stratified design.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        classification = QgsProcessingParameterRasterLayer(
            self.CLASSIFICATION, self.tr("Classified raster (map)"))
        classification.setHelp(self.tr("Integer class raster; its classes are the strata and its "
                                       "pixel counts give the mapped areas."))
        self.addParameter(classification)
        reference = QgsProcessingParameterMapLayer(
            self.REFERENCE, self.tr("Reference (points, polygons or class raster)"),
            types=[QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon,
                   QgsProcessing.TypeRaster])
        reference.setHelp(self.tr("Reference samples: points or polygons with a class field, or "
                                  "a reference class raster."))
        self.addParameter(reference)
        field = QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Reference class field (vector reference)"),
            parentLayerParameterName=self.REFERENCE, optional=True)
        field.setHelp(self.tr("Field holding the reference class value or class name."))
        self.addParameter(field)
        design = QgsProcessingParameterEnum(
            self.SAMPLING_DESIGN, self.tr("Sampling design of the reference sample"),
            options=[self.tr("Stratified random by map class"), self.tr("Simple random"),
                     self.tr("Unknown (no area-adjusted estimates)")], defaultValue=0)
        design.setHelp(self.tr("How the reference sample was drawn; selects the estimators."))
        self.addParameter(design)
        polygons = QgsProcessingParameterEnum(
            self.POLYGON_SAMPLES, self.tr("Polygon reference"),
            options=[self.tr("One sample per polygon: majority map class"),
                     self.tr("One sample per polygon: map class at the centroid"),
                     self.tr("All pixels of each polygon (not independent)")], defaultValue=0)
        polygons.setHelp(self.tr("How polygons become samples."))
        self.addParameter(polygons)
        nodata = QgsProcessingParameterNumber(
            self.MAP_NODATA, self.tr("Map nodata value (empty: from the raster)"),
            QgsProcessingParameterNumber.Integer, optional=True)
        nodata.setFlags(nodata.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        nodata.setHelp(self.tr("Pixels with this value are never counted as a class."))
        self.addParameter(nodata)
        title = QgsProcessingParameterString(self.TITLE, self.tr("Report title"), optional=True)
        title.setFlags(title.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        title.setHelp(self.tr("Heading of the HTML report."))
        self.addParameter(title)
        html = QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, self.tr("HTML report"), self.tr("HTML files (*.html)"),
            defaultValue=QgsProcessing.TEMPORARY_OUTPUT)
        html.setHelp(self.tr("Self-contained report: tables and figures, no network needed."))
        self.addParameter(html)
        js = QgsProcessingParameterFileDestination(
            self.OUTPUT_JSON, self.tr("JSON of every number"), self.tr("JSON files (*.json)"),
            optional=True, createByDefault=True)
        js.setHelp(self.tr("Every number of the report, machine-readable."))
        self.addParameter(js)
        cs = QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, self.tr("CSV of the matrices"), self.tr("CSV files (*.csv)"),
            optional=True, createByDefault=True)
        cs.setHelp(self.tr("Error matrices and per-class tables for spreadsheets."))
        self.addParameter(cs)
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

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks that a vector reference has an existing class field."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        layer = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if isinstance(layer, QgsVectorLayer):
            field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
            names = [f.name() for f in layer.fields()]
            if not field:
                return False, self.tr("Choose the reference class field (fields of the reference "
                                      f"layer: {', '.join(names) or 'none'}).")
            if field.lower() not in [n.lower() for n in names]:
                return False, self.tr(f"The reference layer has no field '{field}'; its fields "
                                      f"are: {', '.join(names) or 'none'}.")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the report paths and headline numbers."""
        from ..core.accuracy.estimates import assess_accuracy

        classification = self.parameterAsRasterLayer(parameters, self.CLASSIFICATION, context)
        reference, is_vector = self._reference(parameters, context, feedback)
        nodata = parameters.get(self.MAP_NODATA)
        nodata = None if nodata in (None, "") else self.parameterAsInt(
            parameters, self.MAP_NODATA, context)
        outputs = {key: self.parameterAsFileOutput(parameters, key, context) or None
                   for key in (self.OUTPUT_HTML, self.OUTPUT_JSON, self.OUTPUT_CSV)}
        result = self.run_engine(
            assess_accuracy,
            classification=classification.source() if classification else None,
            reference=reference,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context)
            if is_vector else None,
            design=DESIGNS[self.parameterAsEnum(parameters, self.SAMPLING_DESIGN, context)],
            polygon_mode=POLYGON_MODES[self.parameterAsEnum(parameters, self.POLYGON_SAMPLES,
                                                            context)],
            output_html=outputs[self.OUTPUT_HTML],
            output_json=outputs[self.OUTPUT_JSON],
            output_csv=outputs[self.OUTPUT_CSV],
            map_nodata=nodata,
            title=self.parameterAsString(parameters, self.TITLE, context) or None,
            **self.callbacks(feedback),
        )
        metrics = result["metrics"]
        estimates = result["area_adjusted"]
        kappa = "undefined" if metrics["kappa"] is None else f"{metrics['kappa']:.3f}"
        feedback.pushInfo(self.tr(
            f"Samples: {metrics['n']}; overall accuracy {metrics['overall_accuracy']:.3f}; "
            f"kappa {kappa}."))
        if estimates:
            ci = estimates["overall_accuracy_ci95"]
            feedback.pushInfo(self.tr(
                f"Area-adjusted overall accuracy {estimates['overall_accuracy']:.3f}"
                + (f" ± {ci:.3f} (95 % CI)." if ci is not None else " (CI undefined).")))
        answer = dict(outputs)
        answer.update({
            self.OVERALL_ACCURACY: metrics["overall_accuracy"],
            self.KAPPA: metrics["kappa"],
            self.MACRO_F1: metrics["macro_f1"],
            self.AREA_ADJUSTED_OA: estimates["overall_accuracy"] if estimates else None,
            self.SAMPLES: metrics["n"],
        })
        return answer
