"""One error type with an HTTP status and a stable code."""
from __future__ import annotations


class HubError(Exception):
    """An error the edges turn into a JSON answer ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, code: str, message: str = "", field: str | None = None):
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code
        self.field = field

    def as_json(self) -> dict:
        body = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


def bad_request(code: str, message: str = "", field: str | None = None) -> HubError:
    return HubError(400, code, message, field)


def not_found(code: str = "not_found", message: str = "") -> HubError:
    return HubError(404, code, message)
