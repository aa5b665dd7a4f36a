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
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    async def publish(self, events: Sequence[BaseModel]) -> None:
        for event in events:
            for handler in list(self._handlers):
                try:
                    result = handler(event)
                    if result is not None:
                        await result
                except Exception:  # a broken listener must not break the producer
                    log.exception("event listener failed on %s", _name(event))


def _name(event: Any) -> str:
    return str(getattr(event, "type", type(event).__name__))
