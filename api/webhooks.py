"""`POST /api/webhooks/{endpoint}`: signed events from n8n, Stripe-style senders and the like.

Authenticated by the body's signature (`Headwater-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">`), not by an API token. Only endpoints a spec declares (a `webhook` source) take
posts. The answer, in the order the checks run:

- 404: no spec declares the endpoint;
- 413: the body is larger than the source's `max_body_bytes` (counted as it arrives);
- 401: no signature, a malformed one, one outside the time window, or one that does not match
  (audited as `webhook.receive` denied; nothing is stored);
- 400: the body is not UTF-8 JSON, or the Idempotency-Key header is not usable;
- 409: the Idempotency-Key was used before for a different body;
- 202: stored (committed before this answer); 200: a duplicate of a stored event (stored once).

Docs: docs/webhooks.md."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from headwater.access.audit import AuditEntry, record
from headwater.webhooks import (
    SIGNATURE_HEADER,
    BadSignature,
    Endpoint,
    EndpointConflict,
    EndpointDirectory,
    IdempotencyConflict,
    idempotency_key,
    store_event,
    verify,
)
from headwater.webhooks.intake import IDEMPOTENCY_HEADER, BadIdempotencyKey

router = APIRouter(tags=["webhooks"])
BLOCK_SECRET_TTL = 60.0
"""Seconds a secret loaded from a Prefect Secret block is used before it is loaded again."""

_lock = threading.Lock()
_directories: dict[Path, EndpointDirectory] = {}
_block_secrets: dict[str, tuple[float, str]] = {}


def now() -> datetime:
    return datetime.now(UTC)


def _directory(folder: Path) -> EndpointDirectory:
    with _lock:
        if folder not in _directories:
            _directories[folder] = EndpointDirectory(folder)
        return _directories[folder]


def _find(folder: Path, name: str) -> Endpoint:
    directory = _directory(folder)
    try:
        endpoint = directory.find(name)
    except EndpointConflict as exc:
        raise ApiError(409, str(exc).split(" Fix: ")[0], exc.hint) from None
    if endpoint is None:  # the names are not listed: whoever asks has not signed anything yet
        raise ApiError(
            404,
            f"there is no webhook endpoint {name!r}",
            "post to an endpoint a pipeline spec declares (a source with kind: webhook and "
            f"endpoint: {name}); the specs are in the API's HEADWATER_PIPELINES folder",
        )
    return endpoint


def _block_secret(block: str) -> str:
    with _lock:
        cached = _block_secrets.get(block)
    if cached is not None and time.monotonic() - cached[0] < BLOCK_SECRET_TTL:
        return cached[1]
    from prefect.blocks.system import Secret

    value = Secret.load(block).get()  # type: ignore[union-attr]
    text = value if isinstance(value, str) else json.dumps(value)
    with _lock:
        _block_secrets[block] = (time.monotonic(), text)
    return text


def _secret(endpoint: Endpoint) -> str:
    """The endpoint's shared secret: from the API process's environment, or a Prefect Secret block."""
    signature = endpoint.signature
    if signature.env is not None:
        value = os.environ.get(signature.env)
        if not value:
            raise ApiError(
                503,
                f"webhook endpoint {endpoint.name} cannot check signatures: {signature.env} is not set "
                "in the API's environment",
                f"export {signature.env}=<the secret the sender signs with> where `headwater api` runs, "
                "and restart it",
            )
        return value
    block = signature.block or ""
    try:
        return _block_secret(block)
    except Exception as exc:  # no Prefect API, no such block: the sender should retry later
        raise ApiError(
            503,
            f"webhook endpoint {endpoint.name} cannot check signatures: the Prefect Secret block "
            f"{block!r} could not be loaded ({type(exc).__name__})",
            f"save it (prefect.blocks.system.Secret(value=...).save({block!r})) on the Prefect server "
            "the API uses (PREFECT_API_URL)",
        ) from None


async def _body(request: Request, endpoint: Endpoint) -> bytes:
    """The body, refused with 413 as soon as it is larger than the endpoint allows (whatever
    Content-Length says)."""
    cap = endpoint.max_body_bytes
    too_large = ApiError(
        413,
        f"the body is larger than webhook endpoint {endpoint.name} takes ({cap} bytes)",
        "send smaller events, or raise max_body_bytes on the spec's webhook source",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_large
    return bytes(body)


def _deny(request: Request, endpoint: Endpoint, reason: str) -> None:
    client = request.client.host if request.client else None
    record(
        request.app.state.context.engine,
        AuditEntry(
            None,
            None,
            "webhook.receive",
            f"webhook {endpoint.name}",
            "denied",
            reason,
            {"client": client} if client else None,
            source="api",
        ),
        now(),
    )


@router.post(
    "/api/webhooks/{endpoint}",
    status_code=202,
    summary="Receive a signed event (stored before the answer)",
    responses={
        200: {"description": "A duplicate of an event stored before (same Idempotency-Key and body)"},
        400: {"description": "The body is not JSON, or the Idempotency-Key is not usable"},
        401: {"description": "Missing, malformed, expired or wrong signature (audited)"},
        404: {"description": "No spec declares this endpoint"},
        409: {"description": "The Idempotency-Key names another event"},
        413: {"description": "The body is larger than the source's max_body_bytes"},
        503: {"description": "The endpoint's secret is not available here, or the store does not answer"},
    },
)
async def receive(endpoint: str, request: Request) -> JSONResponse:
    """Store one event for the pipelines whose `webhook` source reads this endpoint. Sign the raw
    body: `Headwater-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; send
    `Idempotency-Key` (without it, the body's SHA-256 is the key). See docs/webhooks.md."""
    context = request.app.state.context
    found = await run_in_threadpool(_find, context.settings.pipelines_dir, endpoint)
    body = await _body(request, found)
    secret = await run_in_threadpool(_secret, found)
    received = now()
    try:
        signed_at = verify(
            secret,
            request.headers.get(SIGNATURE_HEADER),
            body,
            tolerance=found.signature.tolerance,
            now=received,
        )
    except BadSignature as exc:
        await run_in_threadpool(_deny, request, found, exc.reason)
        raise ApiError(
            401,
            f"the post to webhook endpoint {found.name} is not signed as it should be: {exc.reason}",
            f"sign the raw body: {SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256 of "
            '"<t>.<body>" with the shared secret>, sent within the tolerance (docs/webhooks.md)',
        ) from None
    try:
        json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400,
            f"the body is not UTF-8 JSON ({type(exc).__name__})",
            "send the event as a JSON document with Content-Type: application/json",
        ) from None
    try:
        key = idempotency_key(request.headers.get(IDEMPOTENCY_HEADER), body)
        stored = await run_in_threadpool(
            store_event, context.engine, found.name, key, body, signed_at=signed_at, now=received
        )
    except BadIdempotencyKey as exc:
        raise ApiError(400, str(exc).split(" Fix: ")[0], exc.hint) from None
    except IdempotencyConflict as exc:
        raise ApiError(409, str(exc).split(" Fix: ")[0], exc.hint) from None
    except sa.exc.DBAPIError as exc:  # not stored: the sender retries (it got no 2xx)
        raise ApiError(
            503,
            f"the store did not take the event ({type(exc.orig).__name__}); nothing was stored",
            "retry the post later; `headwater health` shows whether the store answers",
        ) from None
    answer: dict[str, Any] = {
        "status": "duplicate" if stored.duplicate else "accepted",
        "endpoint": found.name,
        "event_id": stored.event_id,
        "idempotency_key": stored.idempotency_key,
    }
    return JSONResponse(answer, status_code=200 if stored.duplicate else 202)
