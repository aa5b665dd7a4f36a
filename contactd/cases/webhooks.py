"""Signed outbound HTTP: webhooks to subscribers, the notifier gateway and the HTTP asset
connector all POST JSON the same way.

Signature header ``X-Contactd-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256(secret, ``"<t>." + body``). Receivers recompute it over the raw body and
reject old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

SIGNATURE_HEADER = "X-Contactd-Signature"
USER_AGENT = "contactd-webhooks/1"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now_s: int, tolerance_s: int = 300) -> bool:
    """Check a signature header (for receivers, and our tests)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now_s - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


@dataclass(frozen=True)
class Delivery:
    status: int
    body: Any  # parsed JSON, or None


class DeliveryFailed(Exception):
    """Not delivered; ``retry`` False means trying again cannot help (e.g. 400)."""

    def __init__(self, message: str, *, status: int | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


# answers worth retrying: the receiver may do better later
RETRY_STATUSES = frozenset({408, 409, 425, 429})


async def post_signed(
    http: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    *,
    secret: str | None,
    now_s: int,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> Delivery:
    """POST ``payload``; a 2xx answer is a delivery, anything else raises DeliveryFailed."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    if secret:
        sent[SIGNATURE_HEADER] = sign(secret, body, now_s)
    try:
        async with http.post(
            url, data=body, headers=sent, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            text = await resp.text()
            if not 200 <= resp.status < 300:
                retry = resp.status >= 500 or resp.status in RETRY_STATUSES
                raise DeliveryFailed(
                    f"HTTP {resp.status}: {text[:200]}", status=resp.status, retry=retry
                )
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            return Delivery(resp.status, parsed)
    except TimeoutError as exc:
        raise DeliveryFailed(f"no answer within {timeout_s}s") from exc
    except aiohttp.ClientError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
