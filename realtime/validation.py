"""Decode untrusted payloads into msgspec Structs, turning every failure into `invalid`."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from realtime.errors import AppError

T = TypeVar("T")


class Payload(msgspec.Struct, forbid_unknown_fields=True):
    """Base for request bodies and event payloads: unknown fields are an error, not ignored."""


def decode_json(raw: bytes | str, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(raw, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise AppError("invalid", f"Données invalides : {exc}") from exc
    except msgspec.DecodeError as exc:
        raise AppError("invalid", "Le corps de la requête n'est pas du JSON valide.") from exc


def convert(obj: Any, type_: type[T]) -> T:
    """For Socket.IO payloads, which arrive already parsed."""
    try:
        return msgspec.convert(obj, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise AppError("invalid", f"Données invalides : {exc}") from exc


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
