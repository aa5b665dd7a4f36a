"""Images and files sent in chats: size and type limits, stored under the data directory,
served through URLs signed with the server key (so an <img> tag can load them)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.sessions.models import Attachment
from contactd.settings import Settings
from contactd.storage.db import write_transaction
from contactd.storage.tables import attachments

_SAFE_NAME = re.compile(r"[^\w.\- ()\u4e00-\u9fff]+")
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF",),
}


class Uploads:
    def __init__(self, engine: AsyncEngine, settings: Settings, clock: Clock, key: bytes) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.root = Path(settings.data_dir) / "uploads"
        self._key = key

    def _sig(self, attachment_id: str) -> str:
        return hmac.new(self._key, attachment_id.encode(), hashlib.sha256).hexdigest()[:24]

    def url(self, attachment_id: str) -> str:
        return f"/api/v1/im/attachments/{attachment_id}/{self._sig(attachment_id)}"

    def check_sig(self, attachment_id: str, sig: str) -> bool:
        return hmac.compare_digest(self._sig(attachment_id), sig)

    async def save(
        self, session_id: str, uploaded_by: str, filename: str, content_type: str, data: bytes
    ) -> Attachment:
        im = self.settings.im
        if len(data) > im.upload_max_bytes:
            raise ContactdError(
                ErrorCode.payload_too_large,
                f"files are limited to {im.upload_max_bytes // 1024} KB",
            )
        if not data:
            raise ContactdError(ErrorCode.validation_failed, "the file is empty")
        if content_type not in im.upload_types:
            raise ContactdError(
                ErrorCode.unsupported_media_type, f"{content_type} files are not accepted"
            )
        magic = _MAGIC.get(content_type)
        if magic and not any(data.startswith(m) for m in magic):
            raise ContactdError(
                ErrorCode.unsupported_media_type, f"the file is not really {content_type}"
            )
        att_id = "f_" + secrets.token_hex(10)
        name = _SAFE_NAME.sub("_", Path(filename or "file").name)[:120] or "file"
        folder = self.root / session_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / att_id
        path.write_bytes(data)
        async with write_transaction(self.engine) as conn:
            await conn.execute(
                sa.insert(attachments).values(
                    id=att_id,
                    session_id=session_id,
                    name=name,
                    content_type=content_type,
                    size=len(data),
                    path=str(path.relative_to(self.root)),
                    uploaded_by=uploaded_by,
                    created_at=self.clock.now_ms(),
                )
            )
        return Attachment(
            id=att_id, name=name, content_type=content_type, size=len(data), url=self.url(att_id)
        )

    async def _row(self, attachment_id: str) -> sa.RowMapping | None:
        async with self.engine.connect() as conn:
            return (
                (
                    await conn.execute(
                        sa.select(attachments).where(attachments.c.id == attachment_id)
                    )
                )
                .mappings()
                .first()
            )

    async def attachment(self, attachment_id: str, session_id: str) -> Attachment:
        row = await self._row(attachment_id)
        if row is None or row["session_id"] != session_id:
            raise ContactdError(ErrorCode.not_found, "no such file in this conversation")
        return Attachment(
            id=row["id"],
            name=row["name"],
            content_type=row["content_type"],
            size=row["size"],
            url=self.url(row["id"]),
        )

    async def file(self, attachment_id: str) -> tuple[Path, str, str]:
        row = await self._row(attachment_id)
        if row is None:
            raise ContactdError(ErrorCode.not_found, "no such file")
        return self.root / row["path"], row["content_type"], row["name"]
