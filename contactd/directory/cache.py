"""A small in-process cache with a time to live and a bounded size, on an injected Clock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from contactd.clock import Clock

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Entries live ``ttl_s`` seconds; beyond ``max_entries`` the least recently used go.

    A ``ttl_s`` of 0 turns the cache off (``get`` always misses).
    """

    def __init__(self, clock: Clock, *, ttl_s: float, max_entries: int) -> None:
        self._clock = clock
        self._ttl_ms = int(ttl_s * 1000)
        self._max = max(1, max_entries)
        self._entries: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        """The live value under ``key``, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_ms, value = entry
        if self._clock.now_ms() >= expires_ms:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value: V) -> None:
        if self._ttl_ms <= 0:
            return
        self._entries[key] = (self._clock.now_ms() + self._ttl_ms, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
