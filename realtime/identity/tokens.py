"""Signed, expiring bearer tokens naming a server-side session (so logout can revoke them)."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class TokenSigner:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._s = URLSafeTimedSerializer(secret, salt="ent-realtime-session")
        self.secret = secret  # other signed values (device cookies) use their own salt
        self.ttl_s = ttl_s

    def sign(self, session_id: str) -> str:
        return self._s.dumps({"sid": session_id})

    def session_id(self, token: str) -> str | None:
        """The session a token names, or None if it is forged, malformed or expired."""
        if not token or len(token) > 512:
            return None
        try:
            data = self._s.loads(token, max_age=self.ttl_s)
        except (SignatureExpired, BadSignature):
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        return sid if isinstance(sid, str) else None
