"""Samplers and pruners by name.

Each entry takes the run's settings and returns a configured Optuna object, so
``--sampler``/``--pruner`` and the study's stored record use the same names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna
from optuna import pruners, samplers

from hpsearch.registry import Registry

__all__ = ["PRUNERS", "SAMPLERS", "make_pruner", "make_sampler"]

# Pruners compare a trial with others at the same epoch; before this many trials have
# finished there is nothing to compare with, and the first epoch of a fresh net is noise.
STARTUP_TRIALS = 5
WARMUP_EPOCHS = 1


def _tpe(seed: int | None, n_objectives: int) -> samplers.BaseSampler:
    # multivariate + group models the conditional space (widths depend on depth) jointly;
    # constant_liar keeps parallel workers from sampling the same point.
    return samplers.TPESampler(
        seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=10
    )


def _cmaes(seed: int | None, n_objectives: int) -> samplers.BaseSampler:
    # CMA-ES handles the continuous part; conditional and categorical parameters fall back to TPE.
    return samplers.CmaEsSampler(
        seed=seed, warn_independent_sampling=False, independent_sampler=samplers.TPESampler(seed=seed)
    )


SAMPLERS: Registry[Callable[[int | None, int], samplers.BaseSampler]] = Registry(
    "sampler",
    {
        "tpe": _tpe,
        "random": lambda seed, n: samplers.RandomSampler(seed=seed),
        "gp": lambda seed, n: samplers.GPSampler(seed=seed, warn_independent_sampling=False),
        "cmaes": _cmaes,
        "qmc": lambda seed, n: samplers.QMCSampler(seed=seed, warn_independent_sampling=False),
        "nsga2": lambda seed, n: samplers.NSGAIISampler(seed=seed, population_size=20),
    },
)

PRUNERS: Registry[Callable[[int], pruners.BasePruner]] = Registry(
    "pruner",
    {
        "median": lambda epochs: pruners.MedianPruner(STARTUP_TRIALS, WARMUP_EPOCHS),
        "percentile": lambda epochs: pruners.PercentilePruner(33.0, STARTUP_TRIALS, WARMUP_EPOCHS),
        "patient": lambda epochs: pruners.PatientPruner(
            pruners.MedianPruner(STARTUP_TRIALS, WARMUP_EPOCHS), patience=1
        ),
        "sha": lambda epochs: pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "hyperband": lambda epochs: pruners.HyperbandPruner(
            min_resource=1, max_resource=max(epochs, 1), reduction_factor=3
        ),
        "none": lambda epochs: pruners.NopPruner(),
    },
)


def make_sampler(name: str, seed: int | None, n_objectives: int = 1) -> samplers.BaseSampler:
    """The sampler called ``name``, seeded."""
    factory = SAMPLERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(seed, n_objectives)


def make_pruner(name: str, epochs: int) -> pruners.BasePruner:
    """The pruner called ``name`` for trials of ``epochs`` epochs."""
    factory = PRUNERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(epochs)
