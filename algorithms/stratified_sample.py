"""Processing algorithm ``landfusion:stratifiedsample``."""

from qgis.core import QgsProcessing, QgsProcessingOutputNumber

from ..core.choices import ALLOCATIONS
from .base import LandFusionAlgorithm
from .groups import ACCURACY


def parse_class_list(text):
    """Parses '1, 2,5' into [1, 2, 5]; raises InputError on anything else."""
    from ..core.errors import InputError

    try:
        return [int(part) for part in str(text or "").replace(";", ",").split(",")
                if part.strip()]
    except ValueError as exc:
        raise InputError("Class values must be integers separated by commas, e.g. 1,2,4.") \
            from exc


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

    GROUP = ACCURACY

    def name(self):
        """Returns the algorithm id."""
        return "stratifiedsample"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Stratified random sample")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Draws a stratified random sample of points from a class map, ready for "
                       "reference labelling.")

    def tags(self):
        """Returns search tags."""
        return self.tr("sample,sampling,stratified,random,reference,validation,accuracy,"
                       "allocation,olofsson,points").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterRasterLayer(
            self.INPUT, "Classified raster (map)",
            help="Integer class raster; each class is a stratum.")
        self.addParameterInt(self.SAMPLE_SIZE, "Total sample size", 500, 1,
                             help="Total number of points over all classes.")
        self.addParameterEnum(self.ALLOCATION, "Allocation", ALLOCATIONS, default="olofsson",
                              help="How the sample size is shared between classes.")
        self.addParameterInt(self.MIN_PER_CLASS, "Minimum per class (Olofsson allocation)", 50,
                             0, help="Each class gets at least this many points.")
        self.addParameterInt(self.SEED, "Random seed", 42, 0,
                             help="The same seed gives the same points.")
        self.addParameterString(self.CLASSES, "Class values to sample (empty: all)",
                                optional=True, help="Comma-separated class values, e.g. 1,2,4.")
        self.addParameterString(
            self.REFERENCE_FIELD, "Name of the empty reference field", "reference",
            advanced=True, help="Integer field left empty, to fill with the reference class.")
        self.addParameterInt(self.MAP_NODATA, "Map nodata value (empty: from the raster)",
                             optional=True, advanced=True,
                             help="Pixels with this value are never sampled.")
        self.addParameterVectorOutput(
            self.OUTPUT, "Sample points", QgsProcessing.TypeVectorPoint,
            help="Point layer (GeoPackage recommended) at pixel centres.")
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, self.tr("Number of points")))

    def check(self, parameters, context):
        """Checks the class list."""
        parse_class_list(self.parameterAsString(parameters, self.CLASSES, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the point layer."""
        from ..core.accuracy.sampling import draw_stratified_sample

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        result = draw_stratified_sample(
            classification=self.parameterAsSourcePath(parameters, self.INPUT, context),
            output_path=output,
            sample_size=self.parameterAsInt(parameters, self.SAMPLE_SIZE, context),
            allocation=self.parameterAsChoice(parameters, self.ALLOCATION, context),
            min_per_class=self.parameterAsInt(parameters, self.MIN_PER_CLASS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            classes=parse_class_list(self.parameterAsString(parameters, self.CLASSES, context))
            or None,
            reference_field=self.parameterAsString(parameters, self.REFERENCE_FIELD, context),
            map_nodata=self.parameterAsOptionalInt(parameters, self.MAP_NODATA, context),
            **self.callbacks(feedback),
        )
        return {self.OUTPUT: output, self.COUNT: result["count"]}
