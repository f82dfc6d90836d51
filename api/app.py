"""The HTTP API (serve it with `headwater api`; OpenAPI docs at /docs).

`GET /health`: the process answers (liveness). `GET /ready`: what Headwater needs answers too — the
metadata store and the warehouse always; the Prefect API (PREFECT_API_URL, or the server `headwater
up` runs), its workers, and Redis when configured — 200, or 503 naming each failing component and
why. Under /api: pipelines, executions, quality, lineage (api/routes.py), each request with an API
token. Every error is JSON with a message and a fix (api/errors.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from api import errors, routes, webhooks
from api.context import ApiContext
from headwater.services import running_api_url
from headwater.settings import Settings
from headwater.views.health import as_json, check_all, readiness


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Headwater API",
        description=(
            "Pipelines, executions, quality and lineage of a Headwater installation. Send "
            "`Authorization: Bearer <token>` (make one with `headwater tokens create`). Errors are "
            '`{"error": {"status", "message", "fix"}}`.'
        ),
        version="1",
    )
    errors.install(app)

    def current() -> Settings:
        return settings or Settings.from_env()

    app.state.context = ApiContext.create(current())
    app.include_router(routes.router)
    app.include_router(webhooks.router)

    @app.get("/health", summary="Liveness: the API process answers")
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: the store, the warehouse and what is configured answer")
    def ready() -> JSONResponse:
        s = current()
        s.ensure_home()
        checks = check_all(
            s.database_url, s.warehouse_url, s.prefect_api_url or running_api_url(s), s.redis_url
        )
        ok, failing = readiness(checks)
        body = {
            "status": "ready" if ok else "not_ready",
            "failing": [
                {"component": c.component, "why": c.detail or "not configured", "target": c.target}
                for c in failing
            ],
            "degraded": [
                {"component": c.component, "why": c.detail} for c in checks if c.status == "degraded"
            ],
            "components": [as_json(c) for c in checks],
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
