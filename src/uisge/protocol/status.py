"""Reason phrases for status codes the server itself sends, and the error body. Data only."""

from http import HTTPStatus

REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}
REASONS[499] = "Client Closed Request"


def reason(status: int) -> str:
    return REASONS.get(status, "Unknown")
