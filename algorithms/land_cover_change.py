"""Processing algorithm ``landfusion:landcoverchange``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm
from .groups import CHANGE
from .train_change_model import layer_sources


class LandCoverChangeAlgorithm(LandFusionAlgorithm):
    """Compares class maps over time: transitions, areas and SDG 11.3.1."""

    MAPS = "MAPS"
    DATES = "DATES"
    FOCUS_CLASS = "FOCUS_CLASS"
    POPULATION = "POPULATION"
    OUTPUT = "OUTPUT"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_JSON = "OUTPUT_JSON"
    OUTPUT_CSV = "OUTPUT_CSV"

    GROUP = CHANGE

    def name(self):
        """Returns the algorithm id."""
        return "landcoverchange"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Land-cover change")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Compares land-cover maps of several dates: from-to map, transition matrix, "
                       "class areas, gains and losses, and urban growth (SDG 11.3.1).")

    def tags(self):
        """Returns search tags."""
        return self.tr("land cover,change,post-classification,transition matrix,from-to,areas,"
                       "gains,losses,urban growth,sdg,11.3.1,lcrpgr,land consumption").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        maps = QgsProcessingParameterMultipleLayers(self.MAPS, self.tr("Class maps (oldest first)"),
                                                    QgsProcessing.TypeRaster)
        maps.setHelp(self.tr("Land-cover maps of the same legend, in time order."))
        self.addParameter(maps)
        dates = QgsProcessingParameterString(self.DATES, self.tr("Dates (ISO, one per map)"),
                                             optional=True)
        dates.setHelp(self.tr("e.g. 2016-07-01,2021-07-01; default: from the file names."))
        self.addParameter(dates)
        focus = QgsProcessingParameterNumber(self.FOCUS_CLASS, self.tr("Focus class id"),
                                             QgsProcessingParameterNumber.Integer, optional=True,
                                             minValue=0)
        focus.setHelp(self.tr("Class followed over time, e.g. the built-up class."))
        self.addParameter(focus)
        population = QgsProcessingParameterString(
            self.POPULATION, self.tr("Population per date"), optional=True)
        population.setHelp(self.tr("Comma-separated, one per map, for SDG 11.3.1."))
        self.addParameter(population)
        output = QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("From-to map"), optional=True)
        output.setHelp(self.tr("Transitions first to last date, with a legend."))
        self.addParameter(output)
        for key, label, file_filter in (
                (self.OUTPUT_HTML, "Report (HTML)", "HTML files (*.html)"),
                (self.OUTPUT_JSON, "Report (JSON)", "JSON files (*.json)"),
                (self.OUTPUT_CSV, "Tables (CSV)", "CSV files (*.csv)")):
            parameter = QgsProcessingParameterFileDestination(
                key, self.tr(label), self.tr(file_filter), optional=True)
            parameter.setHelp(self.tr("Transition matrix, class areas, gains and losses."))
            self.addParameter(parameter)
        for key, label in (("CHANGED_HA", "Changed area (ha)"),
                           ("COMPARED_HA", "Compared area (ha)"), ("LCRPGR", "LCRPGR")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def check(self, parameters, context):
        """Checks the maps, dates, focus class and population figures."""
        from ..core.change.landcover import check_land_cover

        focus = parameters.get(self.FOCUS_CLASS)
        check_land_cover(
            maps=layer_sources(self, parameters, self.MAPS, context),
            dates=self.parameterAsString(parameters, self.DATES, context) or None,
            focus_class=None if focus in (None, "") else
            self.parameterAsInt(parameters, self.FOCUS_CLASS, context),
            population=self.parameterAsString(parameters, self.POPULATION, context) or None)

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the outputs."""
        from ..core.change.landcover import land_cover_change

        focus = parameters.get(self.FOCUS_CLASS)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context) or None
        paths = {key: self.parameterAsFileOutput(parameters, key, context) or None
                 for key in (self.OUTPUT_HTML, self.OUTPUT_JSON, self.OUTPUT_CSV)}
        result = self.run_engine(
            land_cover_change,
            maps=layer_sources(self, parameters, self.MAPS, context),
            output_path=output,
            html_path=paths[self.OUTPUT_HTML], json_path=paths[self.OUTPUT_JSON],
            csv_path=paths[self.OUTPUT_CSV],
            dates=self.parameterAsString(parameters, self.DATES, context) or None,
            focus_class=None if focus in (None, "") else
            self.parameterAsInt(parameters, self.FOCUS_CLASS, context),
            population=self.parameterAsString(parameters, self.POPULATION, context) or None,
            **self.callbacks(feedback),
        )
        intervals = (result.get("focus") or {}).get("intervals") or []
        overall = intervals[-1] if intervals else {}
        return dict(paths, **{self.OUTPUT: output, "CHANGED_HA": result["changed_area_ha"],
                              "COMPARED_HA": result["compared_area_ha"],
                              "LCRPGR": overall.get("LCRPGR")})
