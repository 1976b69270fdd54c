"""Device cookies: a browser where someone already logged in to an account is that account's
own device, and other people's failed attempts never slow it down or lock it out.

The idea is OWASP's « device cookies » against online guessing: failures are counted per
login and per address so that guessing costs the attacker time, but the rightful user's
known device is judged only by its own failures. The cookie is signed (itsdangerous) and
names a random device id and the logins that succeeded on it (a family computer: a parent
and two children), newest first, at most `MAX_LOGINS`.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

DEVICE_COOKIE = "ent_device"
MAX_LOGINS = 8
DEVICE_TTL_S = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days


class DeviceCookies:
    def __init__(self, secret: str) -> None:
        self._s = URLSafeTimedSerializer(secret, salt="ent-realtime-device")

    def read(self, cookie: str | None) -> tuple[str, list[str]] | None:
        """The device id and its logins (casefolded), or None for no or a forged cookie."""
        if not cookie or len(cookie) > 2048:
            return None
        try:
            data = self._s.loads(cookie, max_age=DEVICE_TTL_S)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict):
            return None
        device, logins = data.get("d"), data.get("l")
        if not isinstance(device, str) or not isinstance(logins, list):
            return None
        return device, [x for x in logins if isinstance(x, str)][:MAX_LOGINS]

    def trusted(self, cookie: str | None, login: str) -> str | None:
        """The device id when this browser already logged in to `login`, else None."""
        found = self.read(cookie)
        if found is None or login.casefold() not in found[1]:
            return None
        return found[0]

    def remember(self, cookie: str | None, login: str) -> str:
        """The cookie after a successful login to `login` on this browser."""
        found = self.read(cookie)
        device, logins = found if found else (secrets.token_urlsafe(16), [])
        key = login.casefold()
        logins = [key, *[x for x in logins if x != key]][:MAX_LOGINS]
        return self._s.dumps({"d": device, "l": logins})
