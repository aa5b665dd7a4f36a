"""Typed in-process domain events.

Services publish; listeners (metrics, and later the socket layer, the monitor and the
session recorder) subscribe. Cross-process fan-out is the socket layer's job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel

log = logging.getLogger(__name__)

Handler = Callable[[BaseModel], Awaitable[None] | None]


class Bus:
    """Listeners subscribe to the event types they handle (or to all): an event calls only
    its own listeners, not every listener to ask whether it cares (a chat message or a
    call's routing would otherwise create a coroutine per uninterested listener)."""

    def __init__(self) -> None:
        self._subs: list[tuple[Handler, tuple[type[BaseModel], ...]]] = []
        self._by_type: dict[type[BaseModel], list[Handler]] = {}

    def subscribe(self, handler: Handler, *types: type[BaseModel]) -> Callable[[], None]:
        """``handler`` for events of ``types`` (subclasses too); no types: every event."""
        entry = (handler, types)
        self._subs.append(entry)
        self._by_type.clear()

        def unsubscribe() -> None:
            self._subs.remove(entry)
            self._by_type.clear()

        return unsubscribe

    def _handlers(self, kind: type[BaseModel]) -> list[Handler]:
        found = self._by_type.get(kind)
        if found is None:
            found = [h for h, types in self._subs if not types or issubclass(kind, types)]
            self._by_type[kind] = found
        return found

    async def publish(self, events: Sequence[BaseModel]) -> None:
        for event in events:
            for handler in self._handlers(type(event)):
                try:
                    result = handler(event)
                    if result is not None:
                        await result
                except Exception:  # a broken listener must not break the producer
                    log.exception("event listener failed on %s", _name(event))


def _name(event: Any) -> str:
    return str(getattr(event, "type", type(event).__name__))
