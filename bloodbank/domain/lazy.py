"""A value computed on first use: personal data read from storage is decrypted only when asked for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """Holds a value or how to get it; loads it once, even when several threads ask at once.

    Its repr never shows the value: it usually holds personal data.
    """

    __slots__ = ("_load", "_loaded", "_lock", "_value")

    def __init__(self, value: T | None = None, *, load: Callable[[], T] | None = None) -> None:
        self._value = value
        self._load = load
        self._loaded = load is None
        self._lock = threading.Lock()

    def get(self) -> T:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    assert self._load is not None
                    self._value = self._load()
                    self._loaded = True
        return self._value  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lazy) and self.get() == other.get()

    def __hash__(self) -> int:
        return hash(self.get())

    def __repr__(self) -> str:
        return "Lazy(<redacted>)"
