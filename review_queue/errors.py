"""Queue errors, each with the HTTP status the service answers with."""

from __future__ import annotations


class QueueError(Exception):
    status = 400


class NotFound(QueueError):
    status = 404


class NotYours(QueueError):
    """The item exists but is not leased to the caller (or the caller's role may not do this)."""

    status = 403


class LeaseExpired(QueueError):
    status = 409


class Conflict(QueueError):
    status = 409


class InvalidDecision(QueueError):
    status = 422

    def __init__(self, item_id: str, field: str, message: str):
        super().__init__(f"item {item_id}: {field}: {message}")
        self.field = field
