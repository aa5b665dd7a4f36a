"""Choose the directory the settings ask for."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.clock import Clock, SystemClock
from contactd.directory.base import Directory
from contactd.directory.embedded import EmbeddedDirectory
from contactd.directory.http import HttpDirectory
from contactd.directory.models import DirectorySettings


class HasDirectorySettings(Protocol):
    @property
    def directory(self) -> DirectorySettings: ...


def build_directory(
    settings_like: HasDirectorySettings | DirectorySettings,
    engine: AsyncEngine,
    *,
    clock: Clock | None = None,
) -> Directory:
    """The embedded store on ``engine`` or the HTTP adapter, per ``settings.directory``.

    The caller owns the result: ``await directory.close()`` on shutdown.
    """
    cfg = settings_like if isinstance(settings_like, DirectorySettings) else settings_like.directory
    if cfg.kind == "embedded":
        return EmbeddedDirectory(engine)
    assert cfg.base_url is not None  # DirectorySettings refuses kind "http" without one
    return HttpDirectory(
        cfg.base_url,
        timeout_s=cfg.timeout_s,
        cache_ttl_s=cfg.cache_ttl_s,
        token=cfg.token.get_secret_value() if cfg.token else None,
        clock=clock or SystemClock(),
        cache_max_entries=cfg.cache_max_entries,
    )
