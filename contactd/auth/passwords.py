"""Password hashing with argon2id, run in a worker thread so the event loop stays free."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contactd.settings import Settings

DUMMY_PASSWORD = "not-a-real-password"


class Passwords:
    """argon2id hash / verify / needs-rehash. Pass a tuned ``PasswordHasher`` to change cost."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; False on mismatch or an unreadable hash."""
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def burn(self, password: str) -> None:
        """Spend the time of one verification, so an unknown user answers as slowly."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(DUMMY_PASSWORD)
        await self.verify(self._dummy_hash, password)


def password_hasher(settings: Settings) -> Passwords:
    """Hashing at the cost the settings ask for (argon2id, one lane per core up to 4)."""
    return Passwords(
        PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=4,
        )
    )
