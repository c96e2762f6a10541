"""``hpsearch evaluate``: winner by validation (never test), resumable, stored where show can read it.

Most tests drive :func:`evaluate_study` with a scripted retrain function over a study built
with ``optuna.trial.create_trial``, so they train nothing; one CLI test trains for real.
"""

from __future__ import annotations

import json
import statistics

import optuna
import pytest
from helpers import run
from optuna.trial import TrialState, create_trial

from hpsearch.config import DataConfig, ModelSpec, SearchConfig, TrainConfig
from hpsearch.errors import ConfigError, StudyError
from hpsearch.space import default_space
from hpsearch.study import EVAL_KEY, RECORD_KEY, evaluate_study, open_storage, show_study, study_record
from hpsearch.study._evaluate import RetrainResult

# Search-time validation accuracy of each trial. Trial 3 is the most accurate but breaks a
# constraint; trial 4 was pruned. Neither may be evaluated.
SEARCH = {0: 0.90, 1: 0.85, 2: 0.80, 3: 0.95}


@pytest.fixture
def fake_study(workdir, tiny_npz):
    """A study whose trials carry real specs and configs but were never trained."""
    cfg = SearchConfig(model="fcn", epochs=2, data=DataConfig(dataset=tiny_npz, val_size=100), seed=0)
    study = optuna.create_study(study_name="fake", storage=open_storage(None), direction="maximize")
    study.set_user_attr(RECORD_KEY, study_record(cfg, default_space("fcn")))
    for number, value in SEARCH.items():
        study.add_trial(
            create_trial(
                value=value,
                user_attrs={
                    "spec": ModelSpec(kind="fcn", hidden=[8 + number]).to_dict(),
                    "train": TrainConfig(epochs=2, seed=number, batch_size=32).to_dict(),
                    "outcome": "completed",
                    "params_count": 1000 + number,
                    "flops": 2000 + number,
                },
                constraints={"params": 0.5 if number == 3 else -0.5},
            )
        )
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            user_attrs={"spec": ModelSpec(kind="fcn").to_dict(), "train": TrainConfig().to_dict()},
        )
    )
    return "fake"


class Scripted:
    """A retrain function that returns set accuracies and records every call.

    ``figures[number][seed_index]`` is (val_acc, test_acc); ``stop_at`` raises
    KeyboardInterrupt on that call (1-based), as Ctrl-C during a retrain would.
    """

    def __init__(self, figures: dict[int, list[tuple[float, float]]], stop_at: int | None = None):
        self.figures, self.stop_at = figures, stop_at
        self.calls: list[tuple[int, int]] = []
        self.seeds: dict[tuple[int, int], int] = {}

    def __call__(self, job, data) -> RetrainResult:
        if self.stop_at is not None and len(self.calls) + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append((job.number, job.seed_index))
        self.seeds[(job.number, job.seed_index)] = job.train.seed
        assert data.num_classes == 10  # the study's own dataset was loaded
        val, test = self.figures[job.number][job.seed_index]
        return RetrainResult(val, test, 0.01)


# Search order 0 > 1 > 2. Re-evaluated validation: 1 > 2 > 0. Test: 0 > 2 > 1.
# Only a winner chosen by mean validation accuracy is trial 1.
FIGURES = {
    0: [(0.70, 0.95), (0.72, 0.97), (0.71, 0.96)],
    1: [(0.86, 0.60), (0.84, 0.62), (0.85, 0.61)],
    2: [(0.80, 0.90), (0.78, 0.92), (0.79, 0.91)],
}


def test_winner_is_chosen_by_validation_not_test_nor_search(fake_study):
    retrain = Scripted(FIGURES)
    ev = evaluate_study(fake_study, None, top=3, seeds=2, retrain_fn=retrain)
    assert [r.number for r in ev.rows] == [0, 1, 2]  # infeasible 3 and pruned 4 are never evaluated
    by_test = max(ev.rows, key=lambda r: r.test_mean).number
    assert (by_test, ev.rows[0].number) == (0, 0)  # test and search rankings both point elsewhere
    assert ev.winner == 1
    row0 = ev.rows[0]
    assert row0.val_mean == pytest.approx(0.71)
    assert row0.val_sd == pytest.approx(statistics.stdev([0.70, 0.72]))
    assert row0.test_mean == pytest.approx(0.96)
    assert row0.optimism_gap == pytest.approx(0.90 - 0.71)
    assert ev.rows[1].optimism_gap == pytest.approx(0.85 - 0.85)
    # Fresh seeds: none is the trial's own search seed, and every retrain has its own.
    assert len(set(retrain.seeds.values())) == 6
    assert all(seed != number for (number, _), seed in retrain.seeds.items())
    # Stored on the study, where show (and the report and dashboard) read it.
    stored = optuna.load_study(study_name=fake_study, storage=open_storage(None)).user_attrs[EVAL_KEY]
    assert stored["winner"] == 1 and len(stored["runs"]) == 6
    assert [r["number"] for r in stored["rows"]] == [0, 1, 2]
    assert show_study(fake_study, None)["evaluation"]["winner"] == 1


def test_interrupted_evaluate_resumes_without_redoing_finished_retrains(fake_study):
    first = Scripted(FIGURES, stop_at=4)
    ev = evaluate_study(fake_study, None, top=3, seeds=2, retrain_fn=first)
    assert ev.interrupted and ev.trained == 3 and first.calls == [(0, 0), (0, 1), (1, 0)]
    stored = optuna.load_study(study_name=fake_study, storage=open_storage(None)).user_attrs[EVAL_KEY]
    assert len(stored["runs"]) == 3  # each retrain was stored as soon as it finished

    second = Scripted(FIGURES)
    ev = evaluate_study(fake_study, None, top=3, seeds=2, retrain_fn=second)
    assert not ev.interrupted and (ev.reused, ev.trained) == (3, 3)
    assert second.calls == [(1, 1), (2, 0), (2, 1)]
    assert ev.winner == 1 and all(r.runs == 2 for r in ev.rows)

    # More seeds later: only the new seed index is trained, once per trial.
    third = Scripted(FIGURES)
    ev = evaluate_study(fake_study, None, top=3, seeds=3, retrain_fn=third)
    assert third.calls == [(0, 2), (1, 2), (2, 2)]
    assert ev.rows[0].val_mean == pytest.approx(0.71) and ev.rows[0].runs == 3
    # A different epoch count is a different experiment: nothing is reused.
    fourth = Scripted(FIGURES)
    evaluate_study(fake_study, None, top=1, seeds=1, epochs=5, retrain_fn=fourth)
    assert fourth.calls == [(0, 0)]


def test_bad_requests_fail_cleanly(fake_study, workdir):
    with pytest.raises(ConfigError, match="--seeds"):
        evaluate_study(fake_study, None, seeds=0, retrain_fn=Scripted(FIGURES))
    with pytest.raises(StudyError, match="no study named"):
        evaluate_study("nope", None, retrain_fn=Scripted(FIGURES))
    empty = optuna.create_study(study_name="empty", storage=open_storage(None))
    empty.set_user_attr(RECORD_KEY, {"dataset": "x.npz"})
    with pytest.raises(StudyError, match="no completed feasible trial"):
        evaluate_study("empty", None, retrain_fn=Scripted(FIGURES))


def test_cli_evaluate_trains_for_real_and_show_displays_it(fake_study, capsys):
    args = ("evaluate", fake_study, "--top", "2", "--seeds", "2", "--epochs", "1", "--device", "cpu")
    code, out, _ = run(capsys, *args, "--threads", "1", "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["start", "run", "run", "run", "run", "end"]
    end = events[-1]
    assert [r["number"] for r in end["rows"]] == [0, 1]
    assert all(0 <= r["val_mean"] <= 1 and r["test_mean"] is not None for r in end["rows"])
    assert end["winner"] == max(end["rows"], key=lambda r: r["val_mean"])["number"]
    # A second run finds everything done and trains nothing.
    code, out, err = run(capsys, *args)
    assert code == 0 and "[" not in err and "2/2" in out and "winner" in out
    code, out, _ = run(capsys, "show", fake_study)
    assert code == 0 and "re-evaluation" in out and f"trial {end['winner']} *" in out


def test_cli_evaluate_interrupted_says_how_to_resume(fake_study, capsys, monkeypatch):
    import hpsearch.study._evaluate as module

    def interrupted(job, data, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "retrain", interrupted)
    code, _, err = run(capsys, "evaluate", fake_study, "--device", "cpu", "--quiet")
    assert code == 130 and "run the same command again" in err
    code, _, err = run(capsys, "evaluate", fake_study, "--top", "0")
    assert code == 2 and "hpsearch: error:" in err
