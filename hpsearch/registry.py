"""A tiny name -> constructor registry (the timm habit).

Every categorical hyperparameter (activation, init, optimizer, pooling, ...)
is a :class:`Registry`, so the search space, the CLI and the builders all read
the same list of names and an unknown name fails with the valid ones listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from hpsearch.errors import UnknownChoiceError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """An ordered, read-only mapping from names to constructors.

    Args:
        kind: What the names are (``"activation"``), used in error messages.
        entries: ``name -> constructor`` in display order.
    """

    def __init__(self, kind: str, entries: Mapping[str, T]):
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownChoiceError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise :class:`UnknownChoiceError`."""
        self[name]
        return name

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that adds a constructor under ``name``."""

        def add(fn: T) -> T:
            self._entries[name] = fn
            return fn

        return add
