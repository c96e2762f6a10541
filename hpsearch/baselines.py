"""The hand-tuned configurations from the seed reports, as data.

Every row of both tables in ``shared/baselines.md``. They can be trained by
name (``hpsearch train --baseline cnn-003``), enqueued as the first trials of
a study (``--enqueue-baselines``) and compared with the search in the report.

Where a report did not state a value we use the framework default of the
code it describes, and say so in ``notes``: Keras ``model.fit`` trains with
batch size 32, and ``L2 on dense`` is approximated by weight decay on every
layer (hpsearch has one weight-decay knob).
"""

from __future__ import annotations

from dataclasses import dataclass

from hpsearch.config import ConvBlock, ModelSpec, TrainConfig
from hpsearch.registry import Registry

__all__ = ["BASELINES", "Baseline", "get_baseline"]


@dataclass(frozen=True)
class Baseline:
    """One hand-tuned configuration and what its report measured."""

    id: str
    seed_file: str
    model: ModelSpec
    train: TrainConfig
    reported: str  # as the report gave it
    reported_val: float | None = None
    reported_test: float | None = None
    notes: str = ""

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def reported_accuracy(self) -> float | None:
        """The accuracy to beat: test when reported, else validation."""
        return self.reported_test if self.reported_test is not None else self.reported_val


def _fcn(hidden, activation="relu", dropout=0.0, init="default", init_std=0.05) -> ModelSpec:
    return ModelSpec(
        kind="fcn", hidden=list(hidden), activation=activation, dropout=dropout, init=init, init_std=init_std
    )


def _train(optimizer, lr, epochs, batch_size=32, momentum=0.0, weight_decay=0.0) -> TrainConfig:
    return TrainConfig(
        optimizer=optimizer,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        momentum=momentum,
        weight_decay=weight_decay,
    )


_KERAS = "batch size not stated: Keras default 32"
_CNN_000_CONVS = dict(kernel=5, pool_size=4, pool_stride=2)

_ROWS = [
    Baseline(
        "fcn-000-final",
        "000_890b6b9ad5d8e8b6.txt",
        _fcn([400, 400, 300, 100]),
        _train("adam", 1e-3, 5, weight_decay=1e-4),
        "val 0.8910, test 0.8683",
        0.8910,
        0.8683,
        _KERAS,
    ),
    Baseline(
        "fcn-000-base",
        "000_890b6b9ad5d8e8b6.txt",
        _fcn([300, 100]),
        _train("adam", 1e-3, 5, weight_decay=1e-4),
        "val 0.8770",
        0.8770,
        None,
        _KERAS,
    ),
    Baseline(
        "fcn-001-final",
        "001_5d84d440987b7bfd.txt",
        _fcn([700, 200, 50], dropout=0.15, init="kaiming_uniform"),
        _train("rmsprop", 1e-4, 15, batch_size=64),
        "test 0.9011 (sd 0.0006)",
        None,
        0.9011,
        "batch size not stated: 64 assumed",
    ),
    Baseline(
        "fcn-001-adam",
        "001_5d84d440987b7bfd.txt",
        _fcn([500, 50]),
        _train("adam", 1e-3, 15, 64),
        "test 0.8878",
        None,
        0.8878,
        "batch size not stated: 64 assumed",
    ),
    Baseline(
        "fcn-001-base",
        "001_5d84d440987b7bfd.txt",
        _fcn([500, 50]),
        _train("sgd", 1e-1, 15, 64),
        "test 0.8764 (sd 0.0005)",
        None,
        0.8764,
        "batch size not stated: 64 assumed",
    ),
    Baseline(
        "fcn-002-best",
        "002_757ae46b39df6f80.txt",
        _fcn([64, 64]),
        _train("sgd", 1e-1, 10),
        "val 0.8750",
        0.8750,
        None,
        _KERAS,
    ),
    Baseline(
        "fcn-002-reg",
        "002_757ae46b39df6f80.txt",
        _fcn([64], dropout=0.26),
        _train("sgd", 1e-1, 10, weight_decay=1e-4),
        "val ~0.865",
        0.865,
        None,
        _KERAS,
    ),
    Baseline(
        "fcn-003",
        "003_2176dfd9198037e6.txt",
        _fcn([500, 50, 250]),
        _train("adam", 1e-4, 20, weight_decay=1e-5),
        "test 0.8922",
        None,
        0.8922,
        _KERAS,
    ),
    Baseline(
        "fcn-004",
        "004_394db602e34cc546.txt",
        _fcn([50, 50], activation="tanh", init="normal", init_std=1.0),
        _train("sgd", 1.2e-2, 100, batch_size=128, momentum=0.9),
        "test 0.7836 (own numpy code)",
        None,
        0.7836,
        "100 epochs with early stopping in the report; init normal(0, 1)",
    ),
    Baseline(
        "cnn-000-final",
        "000_890b6b9ad5d8e8b6.txt",
        ModelSpec(
            kind="cnn",
            hidden=[64],
            activation="elu",
            convs=[
                ConvBlock(10, padding="same", pool="max", **_CNN_000_CONVS),
                ConvBlock(32, padding="same", pool="max", **_CNN_000_CONVS),
                ConvBlock(120, kernel=5, padding="valid", pool="none"),
            ],
        ),
        _train("adam", 1e-3, 4, weight_decay=1e-4),
        "val 0.9098, test 0.9033",
        0.9098,
        0.9033,
        _KERAS + "; L2 on dense approximated by weight decay 1e-4 on all layers",
    ),
    Baseline(
        "cnn-000-first",
        "000_890b6b9ad5d8e8b6.txt",
        ModelSpec(
            kind="cnn",
            hidden=[64],
            activation="tanh",
            convs=[
                ConvBlock(10, kernel=5, padding="same", pool="avg", pool_size=2, pool_stride=2),
                ConvBlock(32, kernel=5, padding="same", pool="avg", pool_size=2, pool_stride=2),
                ConvBlock(120, kernel=5, padding="valid", pool="none"),
            ],
        ),
        _train("adam", 1e-3, 4, weight_decay=1e-4),
        "val 0.8838",
        0.8838,
        None,
        _KERAS + "; L2 on dense approximated by weight decay 1e-4 on all layers",
    ),
    Baseline(
        "cnn-003",
        "003_2176dfd9198037e6.txt",
        ModelSpec(
            kind="cnn",
            hidden=[64],
            activation="relu",
            convs=[
                ConvBlock(16, kernel=3, padding="same", pool="avg", pool_size=2),
                ConvBlock(32, kernel=3, padding="same", pool="avg", pool_size=2),
                ConvBlock(64, kernel=3, padding="same", pool="none"),
            ],
        ),
        _train("adam", 1e-3, 10, weight_decay=1e-4),
        "test 0.9167",
        None,
        0.9167,
        _KERAS + "; L2 1e-4 on dense approximated by weight decay on all layers",
    ),
]

BASELINES: Registry[Baseline] = Registry("baseline", {row.id: row for row in _ROWS})


def get_baseline(name: str) -> Baseline:
    """Return the baseline called ``name`` (raises UnknownChoiceError listing the valid ids)."""
    return BASELINES[name]
