"""The errors hpsearch raises for problems the user can fix.

Every expected failure (bad flag, missing file, unknown name, impossible
geometry) is a :class:`HpsearchError`. The CLI turns these into one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "HpsearchError",
    "SpecError",
    "StudyError",
    "UnknownChoiceError",
]


class HpsearchError(Exception):
    """Base class: a problem with what the user asked for, with a fix in its message."""


class ConfigError(HpsearchError):
    """A bad option, value, range or configuration file."""


class UnknownChoiceError(ConfigError):
    """A name that is not in a registry; the message lists the valid names."""


class DataError(HpsearchError):
    """A dataset that cannot be downloaded, found, or parsed."""


class SpecError(HpsearchError):
    """A model spec that cannot work on the input (for example, a feature map below 1x1)."""


class StudyError(HpsearchError):
    """A study that does not exist, conflicts with the request, or cannot be stored."""
