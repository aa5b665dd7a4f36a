"""IVR state in Redis: each call's state, each event's answer (idempotency across
processes) and the signatures seen inside the tolerance window (replays)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from redis.asyncio import Redis

from contactd import fastjson
from contactd.channels.ivr.models import CallState
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.autopipe import auto_pipeline
from contactd.storage.keyspace import SiteKeys

# the call states saved while an event runs, written with its answer
# (call id → its state's JSON as saved)
_DEFERRED: ContextVar[dict[str, str] | None] = ContextVar("ivr_deferred", default=None)
_NONE: Mapping[str, str] = {}
_PENDING_TTL_S = 30  # a worker that dies mid-event loses its claim after this
_WAIT_FOR_TWIN_S = 5.0


def _lua(name: str) -> str:
    return (resources.files("contactd.channels.ivr") / f"{name}.lua").read_text("utf-8")


class _Deferring:
    """``IvrStore.deferring``'s context (a class: a generator-based context manager costs
    several times more, and every webhook enters one)."""

    __slots__ = ("_token",)

    def __enter__(self) -> dict[str, str]:
        pending: dict[str, str] = {}
        self._token = _DEFERRED.set(pending)
        return pending

    def __exit__(self, *_exc: object) -> None:
        _DEFERRED.reset(self._token)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str
    body: str


@dataclass(frozen=True)
class Claim:
    """Either ``owner`` (run the event, then :meth:`IvrStore.finish`) or ``answer`` (the
    event ran before: send this again)."""

    owner: str | None = None
    answer: StoredAnswer | None = None
    created: bool = False  # the new call's state was created with the claim
    number: int | None = None  # the service number taken with it (``number_key``)


class IvrStore:
    def __init__(self, redis: Redis, keys: SiteKeys, event_ttl_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.event_ttl_s = event_ttl_s
        self.pipe = auto_pipeline(redis)  # concurrent webhooks share round trips
        self._claim = redis.register_script(_lua("claim"))
        self._release = redis.register_script(_lua("release"))

    async def claim(
        self,
        event_id: str,
        digest: str,
        nonce: str | None,
        nonce_ttl_s: int,
        new_call: CallState | None = None,
        number_key: tuple[str, int] | None = None,
    ) -> Claim:
        """Take an event for running, or get its earlier answer. ``digest`` identifies the
        event's content: the same id with other content is refused (event_conflict).
        ``new_call`` (a call.incoming's state) is created with ``NX`` by the claim, in the
        same step, when the event is ours (``Claim.created``): one round trip less.
        ``number_key`` (the day's service-number counter and its TTL): a new call takes its
        session's number from it in the same step (``Claim.number``), another round trip
        less for a call that goes straight to a queue."""
        owner = secrets.token_hex(8)
        pending = fastjson.dumps({"owner": owner, "digest": digest})
        key = self.keys.ivr_event(event_id)
        nonce_key = self.keys.ivr_nonce(nonce or "-")
        call_key = self.keys.ivr_call(new_call.call_id if new_call else "-")
        call_json = new_call.model_dump_json() if new_call else ""
        counter, counter_ttl_s = number_key or (self.keys.ivr_call("-"), 0)
        deadline = asyncio.get_running_loop().time() + _WAIT_FOR_TWIN_S
        while True:
            raw = await self.pipe.evalsha(
                self._claim,
                [nonce_key, key, call_key, counter],
                [
                    nonce_ttl_s if nonce else 0,
                    pending,
                    _PENDING_TTL_S,
                    call_json,
                    self.event_ttl_s,
                    counter_ttl_s,
                ],
            )
            kind = raw[0].decode() if isinstance(raw[0], bytes) else raw[0]
            if kind == "replay":
                raise ContactdError(ErrorCode.replayed, "this signed request was already received")
            if kind == "mine":
                return Claim(owner=owner, created=raw[1] == 1, number=int(raw[2]) or None)
            record = fastjson.loads(raw[1])
            if record["digest"] != digest:
                raise ContactdError(
                    ErrorCode.event_conflict, f"event id {event_id} was used for another event"
                )
            if "status" in record:
                return Claim(
                    answer=StoredAnswer(record["status"], record["content_type"], record["body"])
                )
            # the same event is running elsewhere right now: wait for its answer
            if asyncio.get_running_loop().time() > deadline:
                raise ContactdError(
                    ErrorCode.event_conflict, f"event {event_id} is still being handled; retry"
                )
            nonce = None  # our own nonce is recorded already
            await asyncio.sleep(0.02)

    def deferring(self) -> _Deferring:
        """Within: ``save`` keeps the calls' states to be written with the event's answer
        (``finish``, one round trip) or by ``write``."""
        return _Deferring()

    async def finish(
        self, event_id: str, digest: str, answer: StoredAnswer, states: Mapping[str, str] = _NONE
    ) -> None:
        """Store the event's answer and the calls' states it changed, together."""
        record = {
            "digest": digest,
            "status": answer.status,
            "content_type": answer.content_type,
            "body": answer.body,
        }
        # the states go first: an answer that is stored had its states stored
        answer_set = ("SET", self.keys.ivr_event(event_id), fastjson.dumps(record))
        await self.pipe.many([*self._state_sets(states), (*answer_set, "EX", self.event_ttl_s)])

    async def write(self, states: Mapping[str, str]) -> None:
        """Store calls' states (call id → state JSON)."""
        commands = self._state_sets(states)
        if commands:
            await self.pipe.many(commands)

    def _state_sets(self, states: Mapping[str, str]) -> list[tuple[str | int, ...]]:
        ttl = self.event_ttl_s
        return [("SET", self.keys.ivr_call(cid), raw, "EX", ttl) for cid, raw in states.items()]

    async def release(self, event_id: str, owner: str) -> None:
        await self.pipe.evalsha(self._release, [self.keys.ivr_event(event_id)], [owner])

    # calls --------------------------------------------------------------------
    async def call(self, call_id: str) -> CallState | None:
        raw = await self.pipe.execute("GET", self.keys.ivr_call(call_id))
        return None if raw is None else CallState.model_validate_json(raw)

    async def save(self, state: CallState) -> None:
        pending = _DEFERRED.get()
        raw = state.model_dump_json()  # as it is now, whatever happens to it later
        if pending is not None:  # written with the event's answer (see deferring)
            pending[state.call_id] = raw
            return
        await self.write({state.call_id: raw})

    async def create(self, state: CallState) -> Literal["created", "exists"]:
        created = await self.redis.set(
            self.keys.ivr_call(state.call_id), state.model_dump_json(), ex=self.event_ttl_s, nx=True
        )
        return "created" if created else "exists"
