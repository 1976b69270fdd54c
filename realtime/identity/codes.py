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
# The code hash of an account that has no usable personal code (created by the directory
# feed: the ENT's SSO is its way in) until the administration issues one.
NO_CODE = "!aucun-code"


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
        usable = code_hash is not None and not code_hash.startswith("!")
        try:
            # An account without a code costs the same hashing as any other: the answer's
            # timing does not tell which accounts have none.
            return self._ph.verify(code_hash if usable else self._dummy, code) and usable
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, code_hash: str) -> bool:
        if code_hash.startswith("!"):
            return False
        return self._ph.check_needs_rehash(code_hash)

    async def hash_async(self, code: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self.hash, code)

    async def verify_async(self, code_hash: str | None, code: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.verify, code_hash, code)
