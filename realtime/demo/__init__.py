"""Deterministic, idempotent demo data: the département's two pilot collèges."""
