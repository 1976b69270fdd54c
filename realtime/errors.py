"""Errors with a machine code and a French message, for HTTP bodies and Socket.IO acks."""

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


class AppError(Exception):
    """A refusal the caller should see as-is: `code` for programs, `message` for people."""

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

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def ack(self) -> dict[str, Any]:
        """The Socket.IO acknowledgement form: `{"ok": false, "error": {...}}`."""
        return {"ok": False, **self.body()}


def not_found(message: str | None = None) -> AppError:
    """The one answer for "does not exist" and "exists but is not yours" alike."""
    return AppError("not_found", message)
