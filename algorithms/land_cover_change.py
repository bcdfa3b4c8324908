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
from .train_change_model import GROUP, GROUP_ID, layer_sources


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

    GROUP = GROUP
    GROUP_ID = GROUP_ID

    def name(self):
        """Returns the algorithm id."""
        return "landcoverchange"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Land-cover change")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Compares land-cover maps of several dates: from-to map, transition matrix, "
                       "class areas, gains and losses, and urban growth (SDG 11.3.1).")

    def tags(self):
        """Returns search tags."""
        return self.tr("land cover,change,post-classification,transition matrix,from-to,areas,"
                       "gains,losses,urban growth,sdg,11.3.1,lcrpgr,land consumption").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Compares class maps of the same legend in time order (oldest first). Later maps are "
            "warped onto the first map's grid with nearest neighbour.<br><br>"
            "<b>From-to raster</b>: first to last date, code <i>from &times; 100 + to</i> (e.g. "
            "502 = class 5 became class 2; 505 = unchanged) when all class ids are below 100, "
            "else codes 1, 2, ... listed in the legend; styled with one colour and name per "
            "transition. Pixels with nodata on either date are nodata and are reported "
            "separately.<br>"
            "<b>Reports</b> (HTML, JSON, CSV): transition matrix in pixels and hectares (rows = "
            "from, columns = to), class areas per date with a chart, gains, losses and net "
            "change per class. Classes missing on some dates are allowed (union of classes, with "
            "a note); maps whose legends name the same id differently are refused.<br>"
            "<b>Focus class</b> (e.g. built-up): area per date, annual growth rate, and with "
            "POPULATION the SDG indicator 11.3.1: LCR = ln(Urb2/Urb1)/y, PGR = ln(Pop2/Pop1)/y, "
            "LCRPGR = LCR/PGR.<br>"
            "<b>Dates</b>: ISO dates, one per map; default: from the file names (e.g. "
            "lc_2016-07-01.tif), then from the raster metadata.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
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

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks the number of maps, dates and population figures."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.change.landcover import parse_dates, parse_population
        from ..core.errors import LandFusionError

        maps = layer_sources(self, parameters, self.MAPS, context)
        if len(maps) < 2:
            return False, self.tr("Give at least two class maps, oldest first.")
        try:
            parse_dates(self.parameterAsString(parameters, self.DATES, context), len(maps))
            parse_population(self.parameterAsString(parameters, self.POPULATION, context),
                             len(maps))
        except LandFusionError as exc:
            return False, str(exc)
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
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
