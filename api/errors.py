"""Every error the API gives is JSON: `{"error": {"status", "message", "fix"}}` (and `problems`, one
per line of a spec with file, line, field and fix, when a spec or a parameter is wrong). A traceback
never leaves the process: an unexpected error is logged here and answered with a reference to it."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from headwater.access.actions import AccessDenied
from headwater.access.sessions import SessionExpired
from headwater.errors import PermanentError, SpecError, TransientError
from headwater.redact import redact

log = logging.getLogger("headwater.api")

SIGN_IN_FIX = (
    "send `Authorization: Bearer <token>`; an admin makes a token with "
    "`headwater tokens create --name NAME --role data_engineer`"
)


class ApiError(Exception):
    """An answer other than 2xx, with what was wrong and how to fix it."""

    def __init__(self, status: int, message: str, fix: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.fix, self.extra = status, message, fix, extra


def body(status: int, message: str, fix: str | None, **extra: Any) -> dict[str, Any]:
    return {"error": {"status": status, "message": message, "fix": fix, **extra}}


def _split(exc: PermanentError) -> tuple[str, str | None]:
    text = str(exc)
    if exc.hint and text.endswith(f" Fix: {exc.hint}"):
        text = text[: -len(f" Fix: {exc.hint}")]
    return text, exc.hint


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.status, exc.message, exc.fix, **exc.extra), status_code=exc.status)

    @app.exception_handler(AccessDenied)
    def _denied(_: Request, exc: AccessDenied) -> JSONResponse:
        message, fix = _split(exc)
        if exc.username is None:  # nobody (or an unknown, revoked or expired token)
            return JSONResponse(body(401, message, SIGN_IN_FIX), status_code=401)
        return JSONResponse(body(403, message, fix), status_code=403)

    @app.exception_handler(SessionExpired)
    def _expired(_: Request, exc: SessionExpired) -> JSONResponse:
        message, fix = _split(exc)
        return JSONResponse(body(401, message, fix or SIGN_IN_FIX), status_code=401)

    @app.exception_handler(SpecError)
    def _spec(_: Request, exc: SpecError) -> JSONResponse:
        problems = [
            {"file": p.file, "line": p.line, "field": p.field, "message": p.message, "fix": p.hint}
            for p in exc.problems
        ]
        first = exc.problems[0] if exc.problems else None
        return JSONResponse(
            body(
                422,
                f"{first.file}{f':{first.line}' if first.line else ''}: {first.field}: {first.message}"
                if first
                else "the spec is not valid",
                first.hint if first else None,
                problems=problems,
            ),
            status_code=422,
        )

    @app.exception_handler(PermanentError)
    def _permanent(_: Request, exc: PermanentError) -> JSONResponse:
        message, fix = _split(exc)
        status = 404 if message.startswith("there is no ") else 409
        return JSONResponse(body(status, redact(message), fix), status_code=status)

    @app.exception_handler(TransientError)
    def _transient(_: Request, exc: TransientError) -> JSONResponse:
        return JSONResponse(
            body(503, redact(str(exc)), "try again shortly; `headwater health` shows what is down"),
            status_code=503,
        )

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"where": "request", "message": "not valid"}
        return JSONResponse(
            body(
                422,
                f"{first['where']}: {first['message']}",
                "see the request's schema at /docs",
                problems=problems,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        fix = "see the endpoints at /docs" if exc.status_code in (404, 405) else None
        return JSONResponse(body(exc.status_code, str(exc.detail), fix), status_code=exc.status_code)

    @app.exception_handler(Exception)
    def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s", ref)
        return JSONResponse(
            body(
                500,
                f"the API failed unexpectedly ({type(exc).__name__}; reference {ref})",
                "the API's log holds the details under this reference; please report it",
            ),
            status_code=500,
        )
