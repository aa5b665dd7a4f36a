"""One error-code tree. Services raise these; the edges render them.

HTTP: ``{"error": {"code": ..., "message": ...}}`` with ``status``.
Socket ack: ``{"ok": false, "error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    bad_request = "bad_request"
    validation_failed = "validation_failed"
    unauthenticated = "unauthenticated"
    invalid_credentials = "invalid_credentials"
    token_expired = "token_expired"
    forbidden = "forbidden"
    not_found = "not_found"
    method_not_allowed = "method_not_allowed"
    conflict = "conflict"
    payload_too_large = "payload_too_large"
    unsupported_media_type = "unsupported_media_type"
    unavailable = "unavailable"
    # --- cases: after-sales tickets ---
    ticket_not_found = "ticket_not_found"
    ticket_invalid_transition = "ticket_invalid_transition"
    ticket_not_owner = "ticket_not_owner"
    ticket_already_claimed = "ticket_already_claimed"
    ticket_closed = "ticket_closed"
    ticket_changed = "ticket_changed"
    ticket_order_mismatch = "ticket_order_mismatch"
    ticket_urge_throttled = "ticket_urge_throttled"
    # --- end cases ---
    # routing
    unknown_queue = "unknown_queue"
    queue_full = "queue_full"
    contact_exists = "contact_exists"
    contact_not_found = "contact_not_found"
    contact_finished = "contact_finished"
    contact_not_active = "contact_not_active"
    agent_not_found = "agent_not_found"
    agent_offline = "agent_offline"
    agent_busy = "agent_busy"
    invalid_state = "invalid_state"
    offer_not_found = "offer_not_found"
    offer_expired = "offer_expired"
    not_your_offer = "not_your_offer"
    not_your_contact = "not_your_contact"
    designated_target_required = "designated_target_required"
    # accounts
    user_exists = "user_exists"
    user_disabled = "user_disabled"
    unknown_role = "unknown_role"
    # --- monitor ---
    contact_not_waiting = "contact_not_waiting"
    channel_mismatch = "channel_mismatch"
    out_of_scope = "out_of_scope"
    session_not_found = "session_not_found"
    # --- voice (IVR webhooks) ---
    signature_invalid = "signature_invalid"
    signature_stale = "signature_stale"
    replayed = "replayed"
    event_conflict = "event_conflict"
    unknown_call = "unknown_call"
    ivr_not_configured = "ivr_not_configured"
    # --- bot ---
    faq_not_found = "faq_not_found"
    bot_request_not_found = "bot_request_not_found"
    not_with_bot = "not_with_bot"
    # --- cases-money: compensation orders, payouts, open API ---
    compensation_not_found = "compensation_not_found"
    own_order = "own_order"
    not_your_stage = "not_your_stage"
    over_amount_limit = "over_amount_limit"
    asset_not_allowed = "asset_not_allowed"
    version_conflict = "version_conflict"
    payout_not_found = "payout_not_found"
    insufficient_funds = "insufficient_funds"
    idempotency_key_reused = "idempotency_key_reused"
    idempotency_in_progress = "idempotency_in_progress"
    # --- end cases-money ---


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.bad_request: 400,
    ErrorCode.validation_failed: 422,
    ErrorCode.unauthenticated: 401,
    ErrorCode.invalid_credentials: 401,
    ErrorCode.token_expired: 401,
    ErrorCode.forbidden: 403,
    ErrorCode.not_found: 404,
    ErrorCode.method_not_allowed: 405,
    ErrorCode.conflict: 409,
    ErrorCode.payload_too_large: 413,
    ErrorCode.unsupported_media_type: 415,
    ErrorCode.unavailable: 503,
    # --- cases ---
    ErrorCode.ticket_not_found: 404,
    ErrorCode.ticket_invalid_transition: 409,
    ErrorCode.ticket_not_owner: 403,
    ErrorCode.ticket_already_claimed: 409,
    ErrorCode.ticket_closed: 409,
    ErrorCode.ticket_changed: 409,
    ErrorCode.ticket_order_mismatch: 422,
    ErrorCode.ticket_urge_throttled: 429,
    # --- end cases ---
    ErrorCode.unknown_queue: 404,
    ErrorCode.queue_full: 409,
    ErrorCode.contact_exists: 409,
    ErrorCode.contact_not_found: 404,
    ErrorCode.contact_finished: 409,
    ErrorCode.contact_not_active: 409,
    ErrorCode.agent_not_found: 404,
    ErrorCode.agent_offline: 409,
    ErrorCode.agent_busy: 409,
    ErrorCode.invalid_state: 422,
    ErrorCode.offer_not_found: 404,
    ErrorCode.offer_expired: 409,
    ErrorCode.not_your_offer: 403,
    ErrorCode.not_your_contact: 403,
    ErrorCode.designated_target_required: 422,
    ErrorCode.user_exists: 409,
    ErrorCode.user_disabled: 403,
    ErrorCode.unknown_role: 422,
    # --- monitor ---
    ErrorCode.contact_not_waiting: 409,
    ErrorCode.channel_mismatch: 422,
    ErrorCode.out_of_scope: 403,
    ErrorCode.session_not_found: 404,
    # --- voice (IVR webhooks) ---
    ErrorCode.signature_invalid: 401,
    ErrorCode.signature_stale: 401,
    ErrorCode.replayed: 401,
    ErrorCode.event_conflict: 409,
    ErrorCode.unknown_call: 404,
    ErrorCode.ivr_not_configured: 503,
    # --- bot ---
    ErrorCode.faq_not_found: 404,
    ErrorCode.bot_request_not_found: 404,
    ErrorCode.not_with_bot: 409,
}
# --- cases-money ---
_STATUS.update(
    {
        ErrorCode.compensation_not_found: 404,
        ErrorCode.own_order: 403,
        ErrorCode.not_your_stage: 403,
        ErrorCode.over_amount_limit: 403,
        ErrorCode.asset_not_allowed: 422,
        ErrorCode.version_conflict: 409,
        ErrorCode.payout_not_found: 404,
        ErrorCode.insufficient_funds: 409,
        ErrorCode.idempotency_key_reused: 422,
        ErrorCode.idempotency_in_progress: 409,
    }
)
# --- end cases-money ---


class ContactdError(Exception):
    """A failure with a stable code, safe to show to the caller."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}
