"""A scripted IVR platform: posts signed events to contactd's generic IVR webhook. Used by
``scripts/ivr_simulator.py``, ``scripts/bench_ivr.py`` and the tests, and a reference for
anyone writing the platform side."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from contactd.channels.ivr.signing import signed_headers

PATH = "/ivr/v1/events"
# longer than contactd's timestamp tolerance (300 s by default) plus its clock's leeway:
# a signature older than that is refused as stale anyway, never as a replay
REMEMBER_SIGNED_S = 900.0


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    repeated: bool

    @property
    def instruction(self) -> dict[str, Any]:
        assert self.status == 200, f"IVR webhook answered {self.status}: {self.body}"
        found: dict[str, Any] = self.body["instruction"]
        return found

    @property
    def error_code(self) -> str | None:
        err = self.body.get("error")
        return str(err["code"]) if isinstance(err, dict) else None


@dataclass
class IvrClient:
    base: str
    secret: str
    http: aiohttp.ClientSession
    prefix: str = field(default_factory=lambda: secrets.token_hex(4))
    _n: itertools.count[int] = field(default_factory=itertools.count)
    # (body digest, timestamp) pairs signed lately → when: a retry never repeats one (that
    # is a replay); kept only as long as contactd could still take them for one
    _signed: dict[tuple[bytes, int], float] = field(default_factory=dict)

    def event(self, type_: str, call_id: str, **fields: Any) -> dict[str, Any]:
        """A new event (a fresh id each time)."""
        return {"id": f"{self.prefix}-{next(self._n)}", "type": type_, "call_id": call_id, **fields}

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = int(time.time()) if timestamp is None else timestamp
        now = time.monotonic()
        while self._signed:  # oldest first (insertion order): forget what has gone stale
            oldest = next(iter(self._signed))
            if now - self._signed[oldest] < REMEMBER_SIGNED_S:
                break
            del self._signed[oldest]
        self._signed[(hashlib.sha256(body).digest(), ts)] = now
        return signed_headers(self.secret, ts, body)

    async def send(
        self,
        event: dict[str, Any],
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        """Post ``event`` signed now (or with the given ``headers``/``body`` as they are)."""
        raw = body if body is not None else json.dumps(event).encode()
        async with self.http.post(
            self.base + PATH, data=raw, headers=headers if headers is not None else self.sign(raw)
        ) as r:
            data = await r.json(content_type=None)
            return Reply(r.status, data, r.headers.get("X-Contactd-Repeated") == "1")

    async def retry(self, event: dict[str, Any], attempt: int) -> Reply:
        """Deliver ``event`` again, as a platform's ``attempt``-th retry: signed afresh (a
        byte-identical re-post of a signed request is refused as a replay). Tests sign
        retries with past timestamps so they need not wait a second between attempts."""
        raw = json.dumps(event).encode()
        ts = int(time.time()) - attempt
        digest = hashlib.sha256(raw).digest()
        while (digest, ts) in self._signed:  # the first post may have been signed a second later
            ts -= 1
        return await self.send(event, headers=self.sign(raw, ts), body=raw)

    async def incoming(self, call_id: str, caller: str, dialled: str, **kw: Any) -> Reply:
        return await self.send(
            self.event("call.incoming", call_id, caller=caller, dialled=dialled, **kw)
        )

    async def menu(
        self, call_id: str, menu: str, digits: str | None = None, speech: str | None = None
    ) -> Reply:
        fields: dict[str, Any] = {"menu": menu}
        if digits is not None:
            fields["digits"] = digits
        if speech is not None:
            fields["speech"] = speech
        return await self.send(self.event("call.menu", call_id, **fields))

    async def waiting(self, call_id: str) -> Reply:
        return await self.send(self.event("call.waiting", call_id))

    async def answered(self, call_id: str) -> Reply:
        return await self.send(self.event("call.answered", call_id))

    async def ended(self, call_id: str, duration_s: int | None = None) -> Reply:
        extra = {} if duration_s is None else {"duration_s": duration_s}
        return await self.send(self.event("call.ended", call_id, **extra))

    async def abandoned(self, call_id: str) -> Reply:
        return await self.send(self.event("call.abandoned", call_id))

    async def recorded(self, call_id: str, url: str, duration_s: int) -> Reply:
        return await self.send(
            self.event("call.recorded", call_id, recording_url=url, duration_s=duration_s)
        )
