"""Socket.IO plumbing shared by the namespaces: the event table, payload validation,
per-connection rate limit, error acks."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from pydantic import BaseModel, ValidationError

from contactd.errors import ContactdError, ErrorCode
from contactd.metrics import Metrics
from contactd.settings import Settings

log = logging.getLogger(__name__)

Ack = dict[str, Any]
Handler = Callable[[str, Any], Awaitable[Ack]]


def ok(**data: Any) -> Ack:
    return {"ok": True, **data}


def error(code: str, message: str, **details: Any) -> Ack:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"ok": False, "error": err}


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass(frozen=True)
class Event:
    model: type[BaseModel] | None
    handler: Handler


class Namespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Subclasses fill ``self.events``: name → Event(payload model, handler(sid, payload))."""

    def __init__(self, path: str, settings: Settings, metrics: Metrics) -> None:
        super().__init__(path)
        self.settings = settings
        self.metrics = metrics
        self.events: dict[str, Event] = {}
        self._buckets: dict[str, _Bucket] = {}

    def _allow(self, sid: str) -> bool:
        im = self.settings.im
        now = time.monotonic()
        b = self._buckets.get(sid)
        if b is None:
            b = self._buckets[sid] = _Bucket(float(im.events_burst), now)
        b.tokens = min(float(im.events_burst), b.tokens + (now - b.at) * im.events_per_s)
        b.at = now
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True

    def forget(self, sid: str) -> None:
        self._buckets.pop(sid, None)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid = args[0]
        payload = args[1] if len(args) > 1 else None
        result = await self._dispatch(event, sid, payload)
        self.metrics.socket_events.labels(
            self.namespace, _label(event, self.events), "ok" if result.get("ok") else "error"
        ).inc()
        return result

    async def _dispatch(self, event: str, sid: str, payload: Any) -> Ack:
        spec = self.events.get(event)
        if spec is None:
            return error("unknown_event", f"no event {event!r} in {self.namespace}")
        if not self._allow(sid):
            return error("rate_limited", "too many events; slow down")
        try:
            data: Any = payload
            if spec.model is not None:
                if not isinstance(payload, dict):
                    return error(ErrorCode.validation_failed, "the payload must be an object")
                data = spec.model.model_validate(payload)
            return await spec.handler(sid, data)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"]) or "(payload)", "problem": e["msg"]}
                for e in exc.errors()
            ]
            return error(ErrorCode.validation_failed, "the payload is not valid", problems=problems)
        except ContactdError as exc:
            return error(exc.code.value, exc.message)
        except Exception:
            log.exception("socket event %s on %s failed", event, self.namespace)
            return error("internal", "internal error; it has been logged")


def _label(event: str, known: dict[str, Event]) -> str:
    return event if event in known else "unknown"


def refuse(code: ErrorCode, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """The client's ``connect_error`` gets ``{"message", "data": {"code", "message"}}``."""
    return socketio.exceptions.ConnectionRefusedError(
        message, {"code": code.value, "message": message}
    )
