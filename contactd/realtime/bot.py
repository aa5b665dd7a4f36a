"""The bot's part of ``/customer``: the "Talk to a person" button, 👍/👎 on answers, the
chips on show after a reconnect; and ``bot.prompt`` pushed to the customer's session room
(the only emit of the bot context, kept beside the other socket code)."""

from __future__ import annotations

from collections.abc import Callable

import socketio
from pydantic import BaseModel

from contactd.bus import Bus
from contactd.channels.bot.events import BotPrompted
from contactd.channels.bot.models import FeedbackBody, SessionRefIn
from contactd.channels.bot.service import BotService
from contactd.realtime.customer import session_room
from contactd.realtime.gateway import Ack, Event, Namespace, dump, ok


def install_bot_realtime(
    sio: socketio.AsyncServer, bus: Bus, bot: BotService
) -> Callable[[], None]:
    """Add the bot events to the customer namespace; returns the bus unsubscribe."""
    ns: Namespace = sio.namespace_handlers["/customer"]

    async def visitor(sid: str) -> str:
        return str((await ns.get_session(sid))["visitor"])

    async def handoff(sid: str, req: SessionRefIn) -> Ack:
        record = await bot.handoff(await visitor(sid), req.session_id)
        return ok(session=dump(await bot.chat.view(record)))

    async def feedback(sid: str, req: FeedbackBody) -> Ack:
        record = await bot.feedback(await visitor(sid), req)
        return ok(session=dump(await bot.chat.view(record)))

    async def state(sid: str, req: SessionRefIn) -> Ack:
        prompt = await bot.prompt_of(await visitor(sid), req.session_id)
        return ok(prompt=dump(prompt) if prompt else None)

    ns.events.update(
        {
            "bot.handoff": Event(SessionRefIn, handoff),
            "bot.feedback": Event(FeedbackBody, feedback),
            "bot.state": Event(SessionRefIn, state),
        }
    )

    async def on_event(event: BaseModel) -> None:
        if isinstance(event, BotPrompted):
            await sio.emit(
                "bot.prompt",
                dump(event.prompt),
                room=session_room(event.prompt.session_id),
                namespace="/customer",
            )

    return bus.subscribe(on_event, BotPrompted)
