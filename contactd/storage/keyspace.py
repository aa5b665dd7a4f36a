"""Every Redis key contactd uses, built in one place (see docs/redis-keys.md).

All keys of a site carry the hash tag ``{site}`` so that every routing script's keys
live in one Redis Cluster slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREFIX = "cd"


@dataclass(frozen=True)
class SiteKeys:
    site: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", f"{PREFIX}:{{{self.site}}}:")

    # routing: site-wide ------------------------------------------------------
    @property
    def contacts(self) -> str:
        return self.base + "contacts"

    @property
    def agents(self) -> str:
        return self.base + "agents"

    @property
    def routing_state(self) -> str:
        return self.base + "rstate"

    @property
    def offers(self) -> str:
        return self.base + "offers"

    @property
    def wraps(self) -> str:
        return self.base + "wraps"

    @property
    def heartbeats(self) -> str:
        return self.base + "heartbeats"

    @property
    def designated(self) -> str:
        return self.base + "designated"

    @property
    def fallbacks(self) -> str:
        return self.base + "fallbacks"

    @property
    def maxwait(self) -> str:
        return self.base + "maxwait"

    @property
    def reoffer(self) -> str:
        return self.base + "reoffer"

    @property
    def finals(self) -> str:
        return self.base + "finals"

    def routing_site_keys(self) -> list[str]:
        """KEYS[1..11] of every routing script, in the order _lib.lua expects."""
        return [
            self.contacts,
            self.agents,
            self.routing_state,
            self.offers,
            self.wraps,
            self.heartbeats,
            self.designated,
            self.fallbacks,
            self.maxwait,
            self.reoffer,
            self.finals,
        ]

    # routing: per queue ------------------------------------------------------
    def waiting(self, queue_id: str) -> str:
        return f"{self.base}q:{queue_id}:waiting"

    def eligible(self, queue_id: str) -> str:
        return f"{self.base}q:{queue_id}:eligible"

    def rotation(self, queue_id: str) -> str:
        return f"{self.base}q:{queue_id}:rotation"

    def queue_keys(self, queue_id: str) -> list[str]:
        return [self.waiting(queue_id), self.eligible(queue_id), self.rotation(queue_id)]

    # sessions -----------------------------------------------------------------
    def service_numbers(self, day: str) -> str:
        """Per-day counter behind service numbers ``S<day>-<n>`` (expires after 3 days)."""
        return f"{self.base}svcno:{day}"

    def dequeues(self, queue_id: str) -> str:
        """Recent accepted offers of a queue (zset contact → ms), for the estimated wait."""
        return f"{self.base}q:{queue_id}:accepted"

    @property
    def customer_grace(self) -> str:
        """Sessions whose customer disconnected (zset session → deadline ms)."""
        return self.base + "cgrace"

    @property
    def idle_chats(self) -> str:
        """Active chats waiting on the customer (zset "<session>|warn|close" → deadline ms)."""
        return self.base + "idle"

    @property
    def reply_alerts(self) -> str:
        """Active chats waiting on the agent (zset session → alert time ms)."""
        return self.base + "replyalert"

    # --- bot ---------------------------------------------------------------------
    def bot_state(self, session_id: str) -> str:
        """A bot conversation: misses in a row, the open self-service step, the last
        prompt (hash; expires with the conversation)."""
        return f"{self.base}bot:s:{session_id}"

    def bot_handoff(self, session_id: str) -> str:
        """Set once when a bot chat is handed to a person (the hand-over happens once)."""
        return f"{self.base}bot:h:{session_id}"

    def bot_lock(self, session_id: str) -> str:
        """A bot conversation's turn lease across processes (owner token, PX expiry)."""
        return f"{self.base}bot:l:{session_id}"

    def order_phone_tries(self, order_no: str) -> str:
        """Wrong phone checks for an order in the last hour, over all chats and calls
        (counter; contactd/directory/verification.py)."""
        return f"{self.base}pv:{order_no}"

    @property
    def bot_idle(self) -> str:
        """Bot chats by deadline (zset session → ms): no customer message by then, closed."""
        return self.base + "bot:idle"

    @property
    def bot_faq_counts(self) -> str:
        """FAQ usage counted since the last move to SQL (hash "<faq id>:<hits|helpful|
        unhelpful>" → n); renamed to "<this>:flush:<token>" while one process moves it."""
        return self.base + "bot:faqn"

    @property
    def bot_kb_version(self) -> str:
        """Bumped on every knowledge-base change: every process rebuilds its index."""
        return self.base + "bot:kbv"

    # --- supervisor live monitor ------------------------------------------------------
    @property
    def monitor_watched(self) -> str:
        """Set (with a TTL) while some node has a supervisor watching the live monitor: the
        nodes where routing changes push snapshots only then."""
        return self.base + "mon:watched"

    # --- voice (IVR webhooks, contactd/channels/ivr) ----------------------------------
    def ivr_call(self, call_id: str) -> str:
        """One call's IVR state (JSON, expires a day after its last event)."""
        return f"{self.base}ivr:call:{call_id}"

    def ivr_event(self, event_id: str) -> str:
        """An IVR event's answer (JSON), so a retried event has one effect and one answer."""
        return f"{self.base}ivr:evt:{event_id}"

    def ivr_nonce(self, signature: str) -> str:
        """A signature already seen inside the tolerance window (replay guard)."""
        return f"{self.base}ivr:sig:{signature}"
