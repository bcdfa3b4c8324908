"""The shared report writer: safe CSV, escaped HTML, readable SVG figures, atomic files."""

import csv
import io
import os
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from landfusion.core.io.reports import (
    FONT, HtmlReport, bar_chart, csv_cell, csv_text, heatmap, json_text, line_chart,
    write_report_files,
)
from test_accuracy import _assess, _centre, _write_class_raster, _write_points


@pytest.mark.parametrize("value, expected", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tforest", "'\tforest"),
    ("\rforest", "'\rforest"),
    ("-3.5", "-3.5"),
    ("+12", "+12"),
    ("forest", "forest"),
    ("", ""),
    (-3.5, -3.5),
    (7, 7),
    (None, ""),
])
def test_csv_cells_are_neutralised_numbers_untouched(value, expected):
    assert csv_cell(value) == expected


def test_csv_text_round_trips_through_a_csv_reader():
    rows = list(csv.reader(io.StringIO(csv_text([["=1+1", -0.25, "a,b"], ["x", None]]))))
    assert rows == [["'=1+1", "-0.25", "a,b"], ["x", ""]]


def test_html_escapes_text_and_keeps_figures_well_formed():
    page = HtmlReport("Report <1>")
    page.heading("<script>alert(1)</script>")
    page.table(["class", "value"], [["<b>x</b>", 1]])
    page.figure(heatmap(["a & b", "c"], ["a & b", "c"], [[5, 1], [0, 4]], "Map", "Reference"),
                "rows = map, columns = reference; blue = correct, red = error")
    page.figure(bar_chart(["a", "b"], [0.5, None], "F1 per class", maximum=1.0))
    page.figure(line_chart(["2019", "2020", "2021"], {"built": [1.0, None, 3.0]}, "Area"))
    text = page.render()
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;b&gt;x" in text
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == 3
    for svg in svgs:
        root = ET.fromstring(svg)
        sizes = [float(e.get("font-size")) for e in root.iter() if e.get("font-size")]
        assert min(sizes) >= 11, sizes
        assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    # The caption is HTML below the figure (it wraps; it is never clipped by the SVG box).
    assert "<figcaption>rows = map, columns = reference; blue = correct, red = error" in text
    assert int(re.search(r'font-size="(\d+)"', svgs[0]).group(1)) == FONT


def test_heatmap_is_wide_enough_for_long_labels():
    names = ["a very long class name indeed", "b"]
    root = ET.fromstring(heatmap(names, names, [[1, 0], [0, 1]], "Map", "Reference"))
    label = next(e for e in root.iter() if e.text == names[0] and e.get("text-anchor") == "end")
    assert float(label.get("x")) >= len(names[0]) * 6  # the row label fits left of the cells
    assert float(root.get("width")) > float(label.get("x")) + 2 * 40


def test_json_text_handles_numpy_and_nan():
    assert json_text({"a": np.float32(0.5), "b": float("nan"), "c": np.arange(2)}) == \
        '{\n  "a": 0.5,\n  "b": null,\n  "c": [\n    0,\n    1\n  ]\n}'


def test_report_files_are_all_or_nothing(tmp_path):
    first = str(tmp_path / "a.html")

    def broken():
        raise RuntimeError("rendering failed")

    with pytest.raises(RuntimeError):
        write_report_files([(first, "ok", "HTML"), (str(tmp_path / "b.csv"), broken, "CSV")])
    assert os.listdir(tmp_path) == []


def test_accuracy_csv_neutralises_class_names_from_users(tmp_path):
    data = np.array([[1, 1, 2, 2]] * 4, np.uint8)
    names = {1: "=HYPERLINK(\"http://evil\")", 2: "-forest"}
    path = _write_class_raster(tmp_path / "map.tif", data, names=names)
    points = [(*_centre(0, 0), 1), (*_centre(1, 1), 1), (*_centre(2, 2), 2), (*_centre(3, 3), 2)]
    reference = _write_points(tmp_path / "ref.gpkg", points)
    result, out = _assess(tmp_path, path, reference, class_field="ref")
    with open(out["csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[1] == ["map \\ reference", "'=HYPERLINK(\"http://evil\")", "'-forest", "total"]
    assert rows[2][0].startswith("'=") and rows[2][1:] == ["2", "0", "2"]
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    html = open(out["html"], encoding="utf-8").read()
    assert "=HYPERLINK(&quot;http://evil&quot;)" in html and "href=\"http://evil" not in html
