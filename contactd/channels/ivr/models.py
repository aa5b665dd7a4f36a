"""IVR webhook events and the instructions that answer them (no I/O).

Every event names the call it belongs to and carries an ``id`` of its own: a retried event
(same id) has one effect and gets the same answer. See docs/protocol.md, "IVR webhooks".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

CALL_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
EVENT_ID = r"^[A-Za-z0-9_.:-]{1,80}$"
PHONE = r"^\+?[0-9*#-]{1,32}$"
MENU = r"^[a-z_]{1,32}$"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=EVENT_ID, description="unique per event; a retry repeats it")
    call_id: str = Field(pattern=CALL_ID)


class CallIncoming(_Event):
    type: Literal["call.incoming"]
    caller: str = Field(pattern=PHONE, description="the caller's number (ANI)")
    dialled: str = Field(pattern=PHONE, description="the number they called (DNIS)")
    ivr_path: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_./-]{1,64}$", description="menu path chosen so far"
    )


class CallMenu(_Event):
    type: Literal["call.menu"]
    menu: str = Field(pattern=MENU, description="the menu the gather instruction named")
    digits: str | None = Field(default=None, pattern=r"^[0-9*#]{0,32}$")
    speech: str | None = Field(default=None, max_length=500)


class CallWaiting(_Event):
    type: Literal["call.waiting"]


class CallAnswered(_Event):
    type: Literal["call.answered"]


class CallEnded(_Event):
    type: Literal["call.ended"]
    duration_s: int | None = Field(default=None, ge=0)


class CallAbandoned(_Event):
    type: Literal["call.abandoned"]


class CallRecorded(_Event):
    type: Literal["call.recorded"]
    recording_url: str | None = Field(default=None, max_length=500)
    duration_s: int = Field(default=0, ge=0, le=86400)


IvrEvent = Annotated[
    CallIncoming | CallMenu | CallWaiting | CallAnswered | CallEnded | CallAbandoned | CallRecorded,
    Field(discriminator="type"),
]


class _Instruction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Say(_Instruction):
    """Speak ``text``, then hang up."""

    action: Literal["say"] = "say"
    text: str
    language: str


class Gather(_Instruction):
    """Speak ``prompt`` and collect digits (or speech); post them as ``call.menu`` with
    this ``menu``."""

    action: Literal["gather"] = "gather"
    menu: str
    prompt: str
    language: str
    num_digits: int | None = Field(default=1, description="None: until finish_on_key")
    finish_on_key: str = "#"
    timeout_s: int = 8
    speech: bool = True


class Enqueue(_Instruction):
    """Hold the caller (music), announce ``text``; post ``call.waiting`` every
    ``poll_after_s`` until the answer is something else."""

    action: Literal["enqueue"] = "enqueue"
    queue_id: str
    session_id: str
    position: int = Field(description="0 = next in line")
    estimated_wait_s: int | None
    text: str
    language: str
    poll_after_s: int


class Connect(_Instruction):
    """Bridge the caller to the agent at ``endpoint``; post ``call.answered`` when the agent
    picks up and ``call.ended`` when the call is over."""

    action: Literal["connect"] = "connect"
    agent_id: str
    endpoint: str
    session_id: str
    text: str
    language: str


class Voicemail(_Instruction):
    """Speak ``text``, record up to ``max_length_s``; post ``call.recorded``."""

    action: Literal["voicemail"] = "voicemail"
    text: str
    language: str
    max_length_s: int
    finish_on_key: str = "#"


class Hangup(_Instruction):
    action: Literal["hangup"] = "hangup"


Instruction = Annotated[
    Say | Gather | Enqueue | Connect | Voicemail | Hangup, Field(discriminator="action")
]


class IvrAnswer(BaseModel):
    """The body of every answer to an IVR webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    call_id: str
    instruction: Instruction


class MenuStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    menu: str
    input: str
    answer: str


CallOutcome = Literal["self_service", "agent", "abandoned", "voicemail"]


class CallState(BaseModel):
    """One call's IVR state, kept in Redis while the call lasts."""

    model_config = ConfigDict(extra="forbid")

    call_id: str
    caller: str
    dialled: str
    ivr_path: str | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    vip: bool = False
    session_id: str | None = None
    queue_id: str | None = None
    misses: int = 0
    log: list[MenuStep] = Field(default_factory=list)
    voicemail_reason: str | None = None
    started_at: int
    ended: bool = False
    outcome: CallOutcome = "self_service"
    meta: dict[str, Any] = Field(default_factory=dict)


class Callback(BaseModel):
    """A callback request: a caller left a voicemail (from the menu, or when the queue was
    full or they waited too long)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    call_id: str
    caller: str
    customer_id: str | None
    session_id: str | None
    reason: str
    recording_url: str | None
    recording_s: int | None
    state: Literal["open", "done"]
    ticket_id: str | None
    created_at: int


class IvrWebhook(RootModel[IvrEvent]):
    """The body of ``POST /ivr/v1/events``: one event, told apart by ``type``."""


class CallSummary(BaseModel):
    """Finished calls of a period by outcome: how many the IVR served alone (自助完成率)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: int
    until: int
    calls: int
    self_service: int
    agent: int
    abandoned: int
    voicemail: int
    self_service_rate: float | None = Field(description="self_service ÷ calls; None: no calls")
