"""REST for chats: file uploads from the widget and the workspace, attachment downloads,
service-session search and detail."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict

from contactd.api.edge import json_model, ms_param, paging, principal, visitor_id
from contactd.api.registry import api
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import CHAT, UPLOADS
from contactd.sessions.models import Attachment, SessionDetail, SessionRecord

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)


class SessionPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[SessionRecord]


async def _uploader(request: web.Request, session_id: str) -> str:
    """A visitor (``Authorization: Visitor <token>``) of the session, or its agent."""
    chat = request.app[CHAT]
    visitor = visitor_id(request)
    if visitor is not None:
        await chat.customer_session(visitor, session_id)
        return f"visitor:{visitor}"
    who = await principal(request, "agent.work")
    await chat.agent_session(who, session_id)
    return f"agent:{who.name}"


@api.route(
    "POST",
    "/api/v1/im/uploads",
    summary="Upload an image or file into a chat",
    tag="chat",
    response=Attachment,
    status=201,
    errors=(
        *AUTH_ERRORS,
        E.not_found,
        E.payload_too_large,
        E.unsupported_media_type,
        E.validation_failed,
    ),
)
async def upload(request: web.Request) -> web.Response:
    """multipart/form-data with fields ``session_id`` then ``file``. Then send a message of
    kind image/file with the returned ``id`` as ``attachment_id``."""
    if not request.content_type.startswith("multipart/"):
        raise ContactdError(E.unsupported_media_type, "send multipart/form-data")
    try:
        return await _save_upload(request)
    except (ValueError, AssertionError) as exc:  # aiohttp's word for a malformed body
        raise ContactdError(
            E.bad_request, "the multipart body is malformed (a boundary is needed)"
        ) from exc


async def _save_upload(request: web.Request) -> web.Response:
    reader = await request.multipart()
    session_id: str | None = None
    limit = request.app[UPLOADS].settings.im.upload_max_bytes
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "session_id":
            session_id = (await part.text()).strip()[:32]
        elif part.name == "file":
            if session_id is None:
                raise ContactdError(E.validation_failed, "send session_id before the file")
            uploader = await _uploader(request, session_id)
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                data.extend(chunk)
                if len(data) > limit:
                    raise ContactdError(
                        E.payload_too_large, f"files are limited to {limit // 1024} KB"
                    )
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            att = await request.app[UPLOADS].save(
                session_id, uploader, part.filename or "file", content_type, bytes(data)
            )
            return json_model(att, status=201)
    raise ContactdError(E.validation_failed, "no file in the upload")


async def attachment(request: web.Request) -> web.StreamResponse:
    uploads = request.app[UPLOADS]
    att_id, sig = request.match_info["attachment_id"], request.match_info["sig"]
    if not uploads.check_sig(att_id, sig):
        raise ContactdError(E.not_found, "no such file")
    path, content_type, name = await uploads.file(att_id)
    disposition = "inline" if content_type.startswith("image/") else "attachment"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'{disposition}; filename="{name}"',
            "Cache-Control": "private, max-age=86400",
        },
    )


@api.route(
    "GET",
    "/api/v1/sessions",
    summary="Search service sessions",
    tag="sessions",
    response=SessionPage,
    errors=AUTH_ERRORS,
    query={
        "session_id": "string",
        "phone": "string",
        "order_no": "string",
        "agent_id": "string",
        "customer_id": "string",
        "since": "string",
        "until": "string",
        "limit": "integer",
        "offset": "integer",
    },
)
async def search(request: web.Request) -> web.Response:
    who = await principal(request)
    q = request.query
    filters: dict[str, Any] = {
        k: q.get(k) or None for k in ("session_id", "phone", "order_no", "agent_id", "customer_id")
    }
    if not who.can("contacts.view"):
        if not who.can("agent.work"):
            raise ContactdError(E.forbidden, "this needs the permission 'contacts.view'")
        filters["agent_id"] = who.name  # agents search their own sessions only
    limit, offset = paging(request)
    items = await request.app[CHAT].sessions.search(
        **filters,
        since=ms_param(q.get("since"), "since"),
        until=ms_param(q.get("until"), "until"),
        limit=limit,
        offset=offset,
    )
    return json_model(SessionPage(items=items))


@api.route(
    "GET",
    "/api/v1/sessions/{session_id}",
    summary="A session with its transcript",
    tag="sessions",
    response=SessionDetail,
    errors=(*AUTH_ERRORS, E.not_found),
)
async def detail(request: web.Request) -> web.Response:
    who = await principal(request)
    chat = request.app[CHAT]
    record = await chat.agent_session(who, request.match_info["session_id"], current=False)
    return json_model(await chat.sessions.detail(record.id))


def install_im(app: web.Application) -> None:
    app.router.add_get("/api/v1/im/attachments/{attachment_id}/{sig}", attachment)
