"""The study report: a study -> plain data (:func:`collect_report`) -> one HTML page
(:func:`render_report`), written atomically by :func:`write_report`."""

from __future__ import annotations

from hpsearch.report._collect import (
    BaselineRow,
    CurveLine,
    EvalRow,
    ParetoData,
    ParetoPoint,
    ReportData,
    Summary,
    collect_report,
)
from hpsearch.report._model import BestModel, LayerRow, Misclassified, ModelEval
from hpsearch.report._render import render_report
from hpsearch.report._search import (
    ContourData,
    HistoryPoint,
    Importance,
    ParallelData,
    SearchData,
    SlicePoints,
    TimelineBar,
)
from hpsearch.report._trials import ParamRange, TrialRow
from hpsearch.report._write import default_report_path, write_report

__all__ = [
    "BaselineRow",
    "BestModel",
    "ContourData",
    "CurveLine",
    "EvalRow",
    "HistoryPoint",
    "Importance",
    "LayerRow",
    "Misclassified",
    "ModelEval",
    "ParallelData",
    "ParamRange",
    "ParetoData",
    "ParetoPoint",
    "ReportData",
    "SearchData",
    "SlicePoints",
    "Summary",
    "TimelineBar",
    "TrialRow",
    "collect_report",
    "default_report_path",
    "render_report",
    "write_report",
]
