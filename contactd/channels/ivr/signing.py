"""Signed IVR webhooks: HMAC-SHA256 over ``<timestamp>.<body>``.

Headers: ``X-Contactd-Timestamp`` (unix seconds) and ``X-Contactd-Signature: v1=<hex>``
(several ``v1=`` values, comma-separated, while a key is rotated). A request is refused
(401) when unsigned, altered, older or newer than the tolerance, or already received."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from contactd.errors import ContactdError, ErrorCode

TIMESTAMP_HEADER = "X-Contactd-Timestamp"
SIGNATURE_HEADER = "X-Contactd-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    # (hmac.digest: the one-shot C function, no HMAC object per webhook)
    return "v1=" + hmac.digest(secret.encode(), b"%d.%s" % (timestamp, body), "sha256").hex()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(
    secrets: Sequence[str],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now_ms: int,
    tolerance_s: int,
) -> str:
    """Check a request; returns the matching signature (the replay-guard nonce)."""
    if not timestamp or not signature:
        raise ContactdError(
            ErrorCode.signature_invalid,
            f"sign the request: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required",
        )
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise ContactdError(ErrorCode.signature_invalid, "the timestamp is not a number") from exc
    given = [p.strip() for p in signature.split(",") if p.strip().startswith("v1=")]
    expected = [sign(s, ts, body) for s in secrets]
    match = next((g for g in given for e in expected if hmac.compare_digest(g, e)), None)
    if match is None:
        raise ContactdError(ErrorCode.signature_invalid, "the signature does not match the body")
    if abs(now_ms // 1000 - ts) > tolerance_s:
        raise ContactdError(
            ErrorCode.signature_stale,
            f"the timestamp is more than {tolerance_s} s away from our clock",
        )
    return match[3:]
