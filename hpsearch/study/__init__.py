"""Studies: storages, samplers and pruners by name, the objective, workers, and study management."""

from __future__ import annotations

from hpsearch.study._choices import PRUNERS, SAMPLERS, make_pruner, make_sampler
from hpsearch.study._evaluate import EVAL_KEY, EvalRow, Evaluation, evaluate_study
from hpsearch.study._export import ExportResult, export_trial
from hpsearch.study._manage import (
    StudyRow,
    delete_study,
    describe_trial,
    is_feasible,
    list_studies,
    ranked_trials,
    show_study,
    trial_config,
)
from hpsearch.study._run import (
    RECORD_KEY,
    RunSummary,
    config_from_record,
    join_study,
    load_study,
    open_study,
    run_study,
    study_record,
)
from hpsearch.study._storage import (
    DEFAULT_STORAGE,
    artifact_dir,
    open_storage,
    redact_url,
    resolve_storage_url,
)
from hpsearch.study._worker import TrialCounts, count_trials

__all__ = [
    "DEFAULT_STORAGE",
    "EVAL_KEY",
    "PRUNERS",
    "RECORD_KEY",
    "SAMPLERS",
    "EvalRow",
    "Evaluation",
    "ExportResult",
    "RunSummary",
    "StudyRow",
    "TrialCounts",
    "artifact_dir",
    "config_from_record",
    "count_trials",
    "delete_study",
    "describe_trial",
    "evaluate_study",
    "export_trial",
    "is_feasible",
    "join_study",
    "list_studies",
    "load_study",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "ranked_trials",
    "redact_url",
    "resolve_storage_url",
    "run_study",
    "show_study",
    "study_record",
    "trial_config",
]
