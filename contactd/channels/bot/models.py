"""The bot's knowledge base, replies and self-service requests (no I/O)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Lang = Literal["zh", "en"]
HandoffReason = Literal[
    "asked", "misses", "negative_feedback", "no_answer", "bot_unavailable", "verification"
]
RequestKind = Literal["refund", "address_change"]
# recorded: kept for people (no ticket fits, or no case module); ticket_pending: a ticket is
# due and is being opened (retried after a passing failure); ticket_opened: ``ticket_id``;
# ticket_failed: the case module refused it (``details.ticket_error`` says why): a person;
# handled: a person dealt with a recorded or failed one (``handled_by``, ``handled_note``)
RequestStatus = Literal["recorded", "ticket_pending", "ticket_opened", "ticket_failed", "handled"]
NEEDS_PERSON: tuple[RequestStatus, ...] = ("recorded", "ticket_failed")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _clean_list(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        v = v.strip()
        if v and v not in out:
            out.append(v)
    return out


class FaqIn(_Model):
    """A knowledge-base entry as an admin writes it."""

    question: str = Field(min_length=1, max_length=300)
    variants: list[str] = Field(default_factory=list, max_length=50)
    answer: str = Field(min_length=1, max_length=4000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    lang: Lang = "zh"
    suggested: bool = False
    enabled: bool = True

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @field_validator("variants", "tags")
    @classmethod
    def _items(cls, v: list[str]) -> list[str]:
        if any(len(x) > 300 for x in v):
            raise ValueError("each item is at most 300 characters")
        return _clean_list(v)


class FaqPatch(_Model):
    """Change some fields of an entry; the others stay."""

    question: str | None = Field(default=None, min_length=1, max_length=300)
    variants: list[str] | None = Field(default=None, max_length=50)
    answer: str | None = Field(default=None, min_length=1, max_length=4000)
    tags: list[str] | None = Field(default=None, max_length=20)
    lang: Lang | None = None
    suggested: bool | None = None
    enabled: bool | None = None


class Faq(_Model):
    id: int
    question: str
    variants: list[str]
    answer: str
    tags: list[str]
    lang: Lang
    suggested: bool
    enabled: bool
    hits: int = Field(description="times the bot answered with it")
    helpful: int
    unhelpful: int
    created_at: int
    updated_at: int
    updated_by: str | None


class FaqImport(_Model):
    """Entries to add; an entry whose question is already there replaces that entry."""

    entries: list[FaqIn] = Field(min_length=1, max_length=2000)


class FaqImportOut(_Model):
    created: int
    updated: int
    unchanged: int


class SearchBody(_Model):
    text: str = Field(min_length=1, max_length=2000)
    limit: int = Field(default=5, ge=1, le=20)


class Match(_Model):
    faq_id: int = Field(description="negative: a built-in self-service intent")
    action: str | None = Field(default=None, description="the self-service intent, if one")
    question: str
    matched_variant: str
    score: float = Field(description="cosine similarity 0..1")


class SearchOut(_Model):
    answer: Match | None = Field(description="what the bot would answer with, if anything")
    matches: list[Match]


class Suggestion(_Model):
    """A chip under a bot message: tapping it sends ``text`` as the customer's message."""

    label: str = Field(max_length=120)
    text: str = Field(max_length=300)


class BotReply(_Model):
    """What an engine (built-in or external) says to one customer message."""

    texts: list[str] = Field(default_factory=list, max_length=10)
    suggestions: list[Suggestion] = Field(default_factory=list, max_length=10)
    matched: bool = Field(default=True, description="False: the bot did not understand")
    no_answer: bool = Field(default=False, description="nothing related at all")
    handoff: bool = Field(default=False, description="the bot itself wants a person")
    handoff_reason: HandoffReason | None = None
    ask_feedback: bool = False
    faq_id: int | None = None
    order: dict[str, object] | None = None  # an order card to show


class Prompt(_Model):
    """The bot's current offer to the customer, pushed as ``bot.prompt``."""

    session_id: str
    after_seq: int = Field(description="the bot message it belongs to")
    suggestions: list[Suggestion]
    feedback: bool = Field(description="ask whether the answer helped")


class FeedbackBody(_Model):
    session_id: str = Field(max_length=32)
    seq: int = Field(ge=1)
    helpful: bool


class SessionRefIn(_Model):
    session_id: str = Field(max_length=32)


class SelfServiceRequest(_Model):
    id: str
    kind: RequestKind
    session_id: str
    order_no: str
    customer_id: str | None
    details: dict[str, str]
    status: RequestStatus
    ticket_id: str | None = Field(description="the after-sales ticket it opened")
    created_at: int
    handled_by: str | None = Field(default=None, description="who dealt with it by hand")
    handled_at: int | None = None
    handled_note: str | None = Field(default=None, description="what they did")


class HandleRequest(_Model):
    """A person dealt with a request the bot could not finish: what they did, and the
    ticket they opened for it by hand, if any."""

    note: str = Field(min_length=1, max_length=1000)
    ticket_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("note")
    @classmethod
    def _note(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()
