"""Exactly one effect per IVR event: the event is claimed in Redis (with the replay guard
in the same step), run once, and its answer stored; a retry — on any process — gets the
stored answer. Shared by the generic JSON webhook and the Twilio adapter."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from contactd.channels.ivr.models import CallState, Instruction, IvrEvent
from contactd.channels.ivr.service import IvrService, NewCall
from contactd.channels.ivr.store import Claim, IvrStore, StoredAnswer
from contactd.errors import ContactdError
from contactd.metrics import Metrics, child
from contactd.sessions.service import service_number

Render = Callable[[IvrEvent, Instruction], StoredAnswer]
RenderError = Callable[[ContactdError], StoredAnswer]


class Deliveries:
    def __init__(self, service: IvrService, store: IvrStore, metrics: Metrics) -> None:
        self.service = service
        self.store = store
        self.metrics = metrics

    async def deliver(
        self,
        event: IvrEvent,
        render: Render,
        render_error: RenderError,
        *,
        nonce: str | None = None,
        nonce_ttl_s: int = 0,
        source: str = "ivr",
    ) -> tuple[StoredAnswer, bool]:
        """The answer to ``event`` and whether it is a repeat of an earlier answer."""
        digest = hashlib.sha256(event.model_dump_json().encode()).hexdigest()
        new_call = self.service.new_call(event)
        counter = self.service.number_counter(event)
        caller = self.service.look_up_caller(event)  # beside the claim: one wait, not two
        try:
            claim = await self.store.claim(
                event.id,
                digest,
                nonce,
                nonce_ttl_s,
                new_call,
                None if counter is None else (counter[1], counter[2]),
            )
        except BaseException:
            _drop(caller)
            raise
        if claim.answer is not None:
            _drop(caller)
            child(self.metrics.webhook_events, source, event.type, "repeat").inc()
            return claim.answer, True
        assert claim.owner is not None
        with self.store.deferring() as states:
            try:
                instruction = await self.service.handle(
                    event, _new_call(new_call, claim, counter), caller
                )
                answer = render(event, instruction)
                result: str = instruction.action
            except ContactdError as exc:  # a refusal is an answer too: a retry gets the same
                answer = render_error(exc)
                result = exc.code.value
            except BaseException:
                _drop(caller)
                await self.store.write(states)  # what already happened stays known
                await self.store.release(event.id, claim.owner)
                raise
        await self.store.finish(event.id, digest, answer, states)
        child(self.metrics.webhook_events, source, event.type, result).inc()
        return answer, False


def _new_call(
    state: CallState | None, claim: Claim, counter: tuple[str, str, int] | None
) -> NewCall | None:
    if state is None:
        return None
    number = None
    if counter is not None and claim.number is not None:
        number = service_number(counter[0], claim.number)
    return NewCall(state, claim.created, number)


def _drop(task: asyncio.Future[Any] | None) -> None:
    """Cancel a look-up nobody will wait for (its error, if any, is not logged)."""
    if task is not None and not task.done():
        task.cancel()
    elif task is not None and not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" warning
