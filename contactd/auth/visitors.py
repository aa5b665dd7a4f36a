"""Customer identity for the chat widget.

- Visitor tokens: issued by this server to anonymous visitors, ``v1.<visitor id>.<mac>``,
  HMAC-SHA256 with the server's secret key; they let a visitor come back to their session.
- Signed identities: the host site vouches for a logged-in customer with
  ``sig = HMAC-SHA256(im.identity_secret, "<customer_id>.<ts>")`` (hex, ts in seconds).
  Unsigned, altered or expired identities are refused: nobody reads another customer's
  history by claiming their id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.settings import Settings

_PREFIX = "v1"


class Identity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    customer_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    name: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=32)
    ts: int
    sig: str = Field(pattern=r"^[0-9a-f]{64}$")


def sign_identity(secret: str, customer_id: str, ts: int) -> str:
    return hmac.new(secret.encode(), f"{customer_id}.{ts}".encode(), hashlib.sha256).hexdigest()


def load_secret_key(settings: Settings) -> bytes:
    """The configured secret, or one generated once and kept under the data directory."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir) / "secret_key"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    try:
        os.link(tmp, path)  # atomic: exactly one node's key wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


class VisitorAuth:
    def __init__(self, secret_key: bytes, settings: Settings, clock: Clock) -> None:
        self._key = secret_key
        self._settings = settings
        self._clock = clock

    def _mac(self, visitor_id: str) -> str:
        return hmac.new(self._key, f"{_PREFIX}.{visitor_id}".encode(), hashlib.sha256).hexdigest()[
            :32
        ]

    def issue(self) -> tuple[str, str]:
        visitor_id = "v_" + secrets.token_hex(8)
        return visitor_id, f"{_PREFIX}.{visitor_id}.{self._mac(visitor_id)}"

    def token_for(self, visitor_id: str) -> str:
        return f"{_PREFIX}.{visitor_id}.{self._mac(visitor_id)}"

    def verify(self, token: str) -> str:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise ContactdError(ErrorCode.unauthenticated, "not a visitor token")
        if not hmac.compare_digest(parts[2], self._mac(parts[1])):
            raise ContactdError(ErrorCode.unauthenticated, "visitor token does not verify")
        return parts[1]

    def verify_identity(self, identity: Identity) -> Identity:
        secret = self._settings.im.identity_secret
        if not secret:
            raise ContactdError(
                ErrorCode.unauthenticated,
                "identified customers are not enabled (no identity secret)",
            )
        expected = sign_identity(secret, identity.customer_id, identity.ts)
        if not hmac.compare_digest(expected, identity.sig):
            raise ContactdError(ErrorCode.unauthenticated, "customer identity signature is wrong")
        age = self._clock.now_ms() // 1000 - identity.ts
        if age > self._settings.im.identity_max_age_s or age < -300:
            raise ContactdError(ErrorCode.unauthenticated, "customer identity has expired")
        return identity

    def visitor_of_customer(self, customer_id: str) -> str:
        """Identified customers get a stable visitor id, so every device finds their session."""
        digest = hmac.new(self._key, f"customer.{customer_id}".encode(), hashlib.sha256)
        return "vc_" + digest.hexdigest()[:16]
