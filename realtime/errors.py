"""Refusals: a machine code and a French message, turned into HTTP bodies and Socket.IO acks
by the transports (one place each)."""

from __future__ import annotations

from typing import Any

# The codes every client can rely on, with the HTTP status each maps to.
HTTP_STATUS: dict[str, int] = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "quiet_hours": 403,  # messagerie: outside the school's hours of exchange, come back later
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}

DEFAULT_MESSAGES: dict[str, str] = {
    "invalid": "Requête invalide.",
    "unauthorized": "Vous devez vous connecter.",
    "forbidden": "Vous n'avez pas le droit de faire cela.",
    "quiet_hours": "En dehors des heures d'échange : réessayez plus tard.",
    "not_found": "Introuvable.",
    "method_not_allowed": "Méthode non autorisée pour cette adresse.",
    "conflict": "Cette opération entre en conflit avec l'état actuel.",
    "too_large": "Le contenu envoyé est trop volumineux.",
    "unsupported_media_type": "Le contenu doit être envoyé en JSON.",
    "rate_limited": "Trop de requêtes. Réessayez dans un instant.",
    "internal": "Une erreur interne est survenue.",
    "unavailable": "Service momentanément indisponible.",
}


class Refusal(Exception):
    """The one refusal type of the server: a service, a model's pure rule or a handler
    refuses with a `code` for programs and a `message` for people (French), and nothing
    else. It knows nothing of HTTP or Socket.IO: the transports turn it into their shape in
    one place each, `realtime/api.py`'s middleware (`http_status`, `error_body`) and
    `realtime/sio.py`'s `acked` decorator (`ack_body`). Pure, so models raise it too."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message or DEFAULT_MESSAGES[code]
        self.retry_after = retry_after
        self.details = details
        super().__init__(f"{code}: {self.message}")


# The name most of the code base raises: the same class.
AppError = Refusal


def error_body(r: Refusal) -> dict[str, Any]:
    """`{"error": {"code", "message", …}}`: an HTTP error body, and the heart of an ack."""
    error: dict[str, Any] = {"code": r.code, "message": r.message}
    if r.retry_after is not None:
        error["retry_after"] = r.retry_after
    if r.details:
        error["details"] = r.details
    return {"error": error}


def http_status(r: Refusal) -> int:
    return HTTP_STATUS[r.code]


def ack_body(r: Refusal) -> dict[str, Any]:
    """The Socket.IO acknowledgement form: `{"ok": false, "error": {...}}`."""
    return {"ok": False, **error_body(r)}


def not_found(message: str | None = None) -> Refusal:
    """The one answer for "does not exist" and "exists but is not yours" alike."""
    return Refusal("not_found", message)
