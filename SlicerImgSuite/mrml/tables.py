"""Rows of numbers and names -> table nodes, and plot charts from them (DVHs, measurements)."""

from __future__ import annotations

from ._nodes import mrml_scene


def table_node_from_rows(scene, header: list[str], rows: list[list], name: str = "Table"):
    """Add a table node; a column is numeric when every value in it is a number."""
    node = mrml_scene(scene).AddNewNodeByClass("vtkMRMLTableNode", name)
    return fill_table_node(node, header, rows)


def fill_table_node(node, header: list[str], rows: list[list]):
    """Replace a table node's columns by ``header`` and ``rows`` (numeric columns as in :func:`table_node_from_rows`)."""
    from vtkmodules.vtkCommonCore import vtkDoubleArray, vtkStringArray

    node.RemoveAllColumns()
    table = node.GetTable()
    for c, title in enumerate(header):
        values = [row[c] for row in rows]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        column = vtkDoubleArray() if numeric else vtkStringArray()
        column.SetName(str(title))
        for v in values:
            column.InsertNextValue(float(v) if numeric else str(v))
        table.AddColumn(column)
    node.Modified()
    return node


def rows_from_table_node(node) -> tuple[list[str], list[list]]:
    """Header and rows back from a table node (numbers as float, text as str)."""
    table = node.GetTable()
    header = [table.GetColumn(c).GetName() for c in range(table.GetNumberOfColumns())]
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = []
        for c in range(table.GetNumberOfColumns()):
            column = table.GetColumn(c)
            value = column.GetValue(r)
            row.append(float(value) if column.IsNumeric() else str(value))
        rows.append(row)
    return header, rows


def plot_from_table(scene, table_node, x_column: str, y_columns: list[str], name: str = "Plot", colors=None):
    """Add a plot chart with one line series per ``y_columns`` entry, read from ``table_node``."""
    chart = mrml_scene(scene).AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    return set_plot_series(chart, table_node, x_column, y_columns, colors)


def set_plot_series(chart, table_node, x_column: str, y_columns: list[str], colors=None, line_styles=None):
    """Replace a plot chart's line series (removed from the scene) by one per ``y_columns`` entry of ``table_node``.

    ``line_styles``: per series, a vtkMRMLPlotSeriesNode line style name ("Solid", "Dash", ...).
    """
    s = chart.GetScene()
    for n in reversed(range(chart.GetNumberOfPlotSeriesNodes())):
        old = chart.GetNthPlotSeriesNode(n)
        chart.RemoveNthPlotSeriesNodeID(n)
        if old is not None:
            s.RemoveNode(old)
    chart.SetXAxisTitle(x_column)
    for n, column in enumerate(y_columns):
        series = s.AddNewNodeByClass("vtkMRMLPlotSeriesNode", column)
        series.SetAndObserveTableNodeID(table_node.GetID())
        series.SetXColumnName(x_column)
        series.SetYColumnName(column)
        series.SetPlotType(series.PlotTypeScatter)
        series.SetMarkerStyle(series.MarkerStyleNone)
        if colors and n < len(colors):
            series.SetColor(*[c / 255.0 for c in colors[n]])
        if line_styles and n < len(line_styles):
            series.SetLineStyle(getattr(series, f"LineStyle{line_styles[n]}"))
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart
