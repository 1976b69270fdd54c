"""Personal codes: generated, hashed with Argon2id (memory-hard), verified off the loop."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# No 0/O, 1/l/I: codes are read aloud by parents and typed by 11-year-olds.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_MIN_LEN = 8
CODE_MAX_LEN = 128


def generate_code(length: int = 10, rng: secrets.SystemRandom | None = None) -> str:
    choice = (rng or secrets.SystemRandom()).choice
    return "".join(choice(_ALPHABET) for _ in range(length))


class CodeHasher:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verifying against this when the login is unknown keeps the answer's timing the same.
        self._dummy = self._ph.hash("code-inexistant")

    def hash(self, code: str) -> str:
        return self._ph.hash(code)

    def verify(self, code_hash: str | None, code: str) -> bool:
        try:
            return self._ph.verify(code_hash or self._dummy, code) and code_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, code_hash: str) -> bool:
        return self._ph.check_needs_rehash(code_hash)

    async def hash_async(self, code: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self.hash, code)

    async def verify_async(self, code_hash: str | None, code: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.verify, code_hash, code)
