"""What the bot context shares with the REST routes (``app[BOT]``)."""

from __future__ import annotations

from dataclasses import dataclass

from contactd.channels.bot.knowledge import KnowledgeBase
from contactd.channels.bot.requests import SelfServiceRequests
from contactd.channels.bot.service import BotService


@dataclass(frozen=True)
class Bot:
    kb: KnowledgeBase
    requests: SelfServiceRequests
    service: BotService
