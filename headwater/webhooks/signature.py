"""Stripe-style signatures: `Headwater-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256(secret, "<t>.<raw body>"). The timestamp must lie within the tolerance of this clock
(a captured post cannot be replayed later); several v1= entries may be given (while a secret is
rotated, sign with both); the comparison takes constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime

SIGNATURE_HEADER = "Headwater-Signature"
SCHEME = "v1"
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")


class BadSignature(Exception):
    """The post is not signed with the endpoint's secret, or not now. `reason` says which (never
    the secret, never the expected signature)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signature_of(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts in `Headwater-Signature` (now, unless `timestamp` is given)."""
    t = int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp
    return f"t={t},{SCHEME}={signature_of(secret, t, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, the v1 signatures) of a header value; BadSignature when it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, eq, value = part.strip().partition("=")
        if not eq:
            continue
        if key == "t":
            if not value.isdigit() or len(value) > 12:
                raise BadSignature("the signature's t= is not a time in unix seconds")
            timestamp = int(value)
        elif key == SCHEME and _HEX64.fullmatch(value):
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise BadSignature(f"malformed {SIGNATURE_HEADER} header: expected t=<unix seconds>,v1=<hex>")
    return timestamp, signatures


def verify(secret: str, header: str | None, body: bytes, *, tolerance: float, now: datetime) -> datetime:
    """The signed time when `header` signs `body` with `secret` within `tolerance` seconds of
    `now`; else BadSignature with the reason."""
    if not header:
        raise BadSignature(f"no {SIGNATURE_HEADER} header")
    timestamp, given = parse(header)
    skew = now.timestamp() - timestamp
    if abs(skew) > tolerance:
        when = "old" if skew > 0 else "in the future"
        raise BadSignature(
            f"the signature's timestamp is {abs(skew):.0f}s {when} (tolerance {tolerance:g}s): "
            "a replay, or a clock that is off"
        )
    expected = signature_of(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise BadSignature("the signature does not match the body (wrong secret, or a changed body)")
    return datetime.fromtimestamp(timestamp, UTC)
