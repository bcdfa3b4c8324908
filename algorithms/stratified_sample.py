"""Processing algorithm ``landfusion:stratifiedsample``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from .base import LandFusionAlgorithm

ALLOCATIONS = ("equal", "proportional", "olofsson")


def parse_class_list(text):
    """Parses '1, 2,5' into [1, 2, 5]; raises ValueError on anything else."""
    return [int(part) for part in str(text or "").replace(";", ",").split(",") if part.strip()]


class StratifiedSampleAlgorithm(LandFusionAlgorithm):
    """Draws a stratified random sample of points from a class map for reference labelling."""

    INPUT = "INPUT"
    SAMPLE_SIZE = "SAMPLE_SIZE"
    ALLOCATION = "ALLOCATION"
    MIN_PER_CLASS = "MIN_PER_CLASS"
    SEED = "SEED"
    CLASSES = "CLASSES"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    MAP_NODATA = "MAP_NODATA"
    OUTPUT = "OUTPUT"
    COUNT = "COUNT"

    GROUP = "Accuracy assessment"
    GROUP_ID = "accuracy"

    def name(self):
        """Returns the algorithm id."""
        return "stratifiedsample"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Stratified random sample (for accuracy assessment)")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Draws a stratified random sample of points from a class map, ready for "
                       "reference labelling.")

    def tags(self):
        """Returns search tags."""
        return self.tr("sample,sampling,stratified,random,reference,validation,accuracy,"
                       "allocation,olofsson,points").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Draws random pixel centres from a classified raster, stratified by map class, and "
            "writes them as points with the map class (<i>map_class</i>, <i>map_name</i>) and an "
            "empty integer reference field to fill in.<br><br>"
            "<b>Allocation</b>: <i>equal</i> gives each class the same number of points; "
            "<i>proportional</i> follows the mapped area (rare classes may get too few points); "
            "<i>Olofsson</i> (recommended, Olofsson et al. 2014) gives every class at least the "
            "minimum per class and shares the rest in proportion to area.<br>"
            "Nodata pixels are never drawn. The same seed and raster give the same points. "
            "Sample ids are in random order, so labelling does not go class by class; hide the "
            "map class while labelling to avoid bias.<br>"
            "Then run <i>Accuracy report</i> with the design <i>Stratified random by map class"
            "</i>.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        classification = QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Classified raster (map)"))
        classification.setHelp(self.tr("Integer class raster; each class is a stratum."))
        self.addParameter(classification)
        size = QgsProcessingParameterNumber(
            self.SAMPLE_SIZE, self.tr("Total sample size"), QgsProcessingParameterNumber.Integer,
            defaultValue=500, minValue=1)
        size.setHelp(self.tr("Total number of points over all classes."))
        self.addParameter(size)
        allocation = QgsProcessingParameterEnum(
            self.ALLOCATION, self.tr("Allocation"),
            options=[self.tr("Equal per class"), self.tr("Proportional to mapped area"),
                     self.tr("Minimum per class, rest proportional (Olofsson et al. 2014)")],
            defaultValue=2)
        allocation.setHelp(self.tr("How the sample size is shared between classes."))
        self.addParameter(allocation)
        minimum = QgsProcessingParameterNumber(
            self.MIN_PER_CLASS, self.tr("Minimum per class (Olofsson allocation)"),
            QgsProcessingParameterNumber.Integer, defaultValue=50, minValue=0)
        minimum.setHelp(self.tr("Each class gets at least this many points."))
        self.addParameter(minimum)
        seed = QgsProcessingParameterNumber(
            self.SEED, self.tr("Random seed"), QgsProcessingParameterNumber.Integer,
            defaultValue=42, minValue=0)
        seed.setHelp(self.tr("The same seed gives the same points."))
        self.addParameter(seed)
        classes = QgsProcessingParameterString(
            self.CLASSES, self.tr("Class values to sample (empty: all)"), optional=True)
        classes.setHelp(self.tr("Comma-separated class values, e.g. 1,2,4."))
        self.addParameter(classes)
        field = QgsProcessingParameterString(
            self.REFERENCE_FIELD, self.tr("Name of the empty reference field"),
            defaultValue="reference")
        field.setFlags(field.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        field.setHelp(self.tr("Integer field left empty, to fill with the reference class."))
        self.addParameter(field)
        nodata = QgsProcessingParameterNumber(
            self.MAP_NODATA, self.tr("Map nodata value (empty: from the raster)"),
            QgsProcessingParameterNumber.Integer, optional=True)
        nodata.setFlags(nodata.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        nodata.setHelp(self.tr("Pixels with this value are never sampled."))
        self.addParameter(nodata)
        output = QgsProcessingParameterVectorDestination(
            self.OUTPUT, self.tr("Sample points"), QgsProcessing.TypeVectorPoint,
            defaultValue=QgsProcessing.TEMPORARY_OUTPUT)
        output.setHelp(self.tr("Point layer (GeoPackage recommended) at pixel centres."))
        self.addParameter(output)
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, self.tr("Number of points")))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks the class list and the minimum per class against the sample size."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            parse_class_list(self.parameterAsString(parameters, self.CLASSES, context))
        except ValueError:
            return False, self.tr("Class values must be integers separated by commas, e.g. 1,2,4.")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the point layer."""
        from ..core.accuracy.sampling import draw_stratified_sample

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        nodata = parameters.get(self.MAP_NODATA)
        nodata = None if nodata in (None, "") else self.parameterAsInt(
            parameters, self.MAP_NODATA, context)
        result = self.run_engine(
            draw_stratified_sample,
            classification=layer.source() if layer else None,
            output_path=output,
            sample_size=self.parameterAsInt(parameters, self.SAMPLE_SIZE, context),
            allocation=ALLOCATIONS[self.parameterAsEnum(parameters, self.ALLOCATION, context)],
            min_per_class=self.parameterAsInt(parameters, self.MIN_PER_CLASS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            classes=parse_class_list(self.parameterAsString(parameters, self.CLASSES, context))
            or None,
            reference_field=self.parameterAsString(parameters, self.REFERENCE_FIELD, context),
            map_nodata=nodata,
            **self.callbacks(feedback),
        )
        return {self.OUTPUT: output, self.COUNT: result["count"]}
