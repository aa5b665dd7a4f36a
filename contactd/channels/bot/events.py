"""Bot domain events on the bus; contactd/realtime/bot.py turns them into socket emits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from contactd.channels.bot.models import HandoffReason, Prompt


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotPrompted(_Event):
    """New suggestion chips / a feedback question for the customer (empty: clear them)."""

    type: Literal["bot.prompted"] = "bot.prompted"
    prompt: Prompt


class BotHandedOver(_Event):
    type: Literal["bot.handed_over"] = "bot.handed_over"
    session_id: str
    queue_id: str
    reason: HandoffReason
