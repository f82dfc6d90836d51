"""GA4 sources: the Google Analytics Data API's `runReport` (v1beta) for one property.

A service-account key (JSON from ${ENV}, a key file, or a block the flow hands down) is exchanged for
an access token by google-auth (the JWT-bearer grant at the key's `token_uri`). Pages are read by
offset/limit, ordered by the dimensions, until the response's `rowCount` is reached. 429 and 5xx are
retried within the extract, honouring Retry-After, and counted in the step's metrics; when the
retries run out the error is a TransientError, so the step's retry policy may take over. A property
whose daily tokens are spent, a bad dimension, a key without access: PermanentError with the fix.

The frame is typed from the response's headers: dimensions as text (`date` as a Date), metrics of
TYPE_INTEGER as Int64 and every other metric type (float, seconds, currency...) as Float64."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import polars as pl

from headwater.connections import Connections
from headwater.errors import PermanentError, TransientError
from headwater.extract.base import ExtractResult
from headwater.extract.rest import retry_after_seconds
from headwater.spec.models import Ga4Credentials, Ga4Source

log = logging.getLogger(__name__)
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_VALUES = pl.List(pl.Struct({"value": pl.String}))
_DAYS_AGO = re.compile(r"^(\d+)daysAgo$")
_DAILY_QUOTA = re.compile(r"(?i)per day|tokensPerDay|daily")


def column_name(api_name: str, snake: bool) -> str:
    """activeUsers -> active_users, customEvent:plan_type -> custom_event_plan_type (with `snake`)."""
    if not snake:
        return api_name
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", api_name)
    return re.sub(r"[^0-9A-Za-z]+", "_", spaced).strip("_").lower()


def resolve_day(value: str, today: date) -> date:
    """A GA4 date form (today, yesterday, NdaysAgo, YYYY-MM-DD) as a day, `today` being the property's."""
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    match = _DAYS_AGO.match(value)
    if match:
        return today - timedelta(days=int(match.group(1)))
    return date.fromisoformat(value)


def report_range(source: Ga4Source, watermark: Any, now: datetime) -> tuple[str, str] | None:
    """The (startDate, endDate) to ask for. Not incremental: the spec's range as written (GA4 resolves
    relative forms in the property's time zone). Incremental: from the day after the watermark (less
    `lookback_days`) up to yesterday in the source's time zone; None when that is already loaded."""
    if source.incremental is None:
        return source.date_range.start_date, source.date_range.end_date
    today = now.astimezone(ZoneInfo(source.timezone)).date()
    end = today - timedelta(days=1)
    if watermark is None:
        start = resolve_day(source.incremental.initial, today)
    else:
        last = watermark if isinstance(watermark, date) else date.fromisoformat(str(watermark))
        start = last + timedelta(days=1 - source.incremental.lookback_days)
    if start > end:
        return None
    return start.isoformat(), end.isoformat()


def service_account_info(
    name: str, creds: Ga4Credentials, connections: Connections, base_dir: Path
) -> dict[str, Any]:
    """The service-account key as a dict; its private key is remembered as a secret. The key's text is
    never repeated in a message."""
    if creds.block is not None:
        text, where = connections.service_account_block(creds.block), f"block {creds.block!r}"
    elif creds.credentials_json is not None:
        text, where = creds.credentials_json, "credentials_json"
    else:
        path = base_dir / (creds.key_file or "")
        where = f"key file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PermanentError(
                f"source {name}: cannot read the GA4 {where}: {exc.strerror}",
                hint="point key_file at the service account's JSON key (relative to the spec's folder)",
            ) from None
    connections.remember_secret(text)
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    missing = (
        [k for k in ("client_email", "private_key", "token_uri") if not isinstance(info.get(k), str)]
        if isinstance(info, dict)
        else ["(not a JSON object)"]
    )
    if missing or (isinstance(info, dict) and info.get("type") != "service_account"):
        raise PermanentError(
            f"source {name}: the GA4 {where} is not a service-account key "
            f"(missing or wrong: {', '.join(missing) or 'type'})",
            hint="create a JSON key for the service account (Google Cloud console > IAM > Service "
            "accounts > Keys > Add key > JSON) and give its whole text",
        )
    assert isinstance(info, dict)
    connections.remember_secret(info["private_key"])
    return info


@dataclass
class Ga4Reader:
    """Reads one report: a token, then pages. Counts requests and retries for the step's metrics."""

    name: str
    source: Ga4Source
    info: dict[str, Any]
    connections: Connections
    client: httpx.Client = field(init=False)
    requests: int = 0
    retries: int = 0
    retry_statuses: list[int] = field(default_factory=list)
    waited_seconds: float = 0.0
    _credentials: Any = None

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=self.source.timeout)

    @property
    def url(self) -> str:
        return f"{self.source.endpoint.rstrip('/')}/v1beta/properties/{self.source.property}:runReport"

    def token(self, refresh: bool = False) -> str:
        """An access token from the JWT-bearer exchange at the key's token_uri (google-auth)."""
        from google.auth import exceptions as gexc
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        if self._credentials is None:
            try:
                self._credentials = service_account.Credentials.from_service_account_info(
                    self.info, scopes=[SCOPE]
                )
            except (ValueError, gexc.GoogleAuthError) as exc:
                raise PermanentError(
                    f"source {self.name}: the GA4 service-account key cannot sign: {type(exc).__name__}",
                    hint="give the service account's JSON key as Google created it",
                ) from None
        creds = self._credentials
        if refresh or not creds.valid:
            try:
                creds.refresh(Request())
            except gexc.TransportError as exc:
                raise TransientError(f"source {self.name}: GA4 token request failed: {exc}") from None
            except gexc.RefreshError as exc:
                if getattr(exc, "retryable", False):  # the token endpoint's 5xx or 429
                    raise TransientError(f"source {self.name}: GA4 token request failed: {exc}") from None
                raise PermanentError(
                    f"source {self.name}: Google refused the service account "
                    f"{self.info['client_email']}: {exc.args[0] if exc.args else exc}",
                    hint="the key may be deleted or disabled: create a new JSON key for the service account",
                ) from None
            self.connections.remember_secret(creds.token)
        return str(creds.token)

    def run_report(self, body: dict[str, Any]) -> tuple[dict[str, Any], pl.DataFrame]:
        """One runReport request, retried on network errors, 429 and 5xx (Retry-After honoured): the
        response without its rows, and the rows as a frame (dimensionValues, metricValues)."""
        src = self.source
        delay, refreshed = src.backoff, False
        attempt = 0
        while True:
            self.requests += 1
            headers = {"Authorization": f"Bearer {self.token()}"}
            status: int | None = None
            wait: float | None = None
            try:
                resp = self.client.post(self.url, json=body, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = resp.status_code
                if status == 200:
                    return parse_report(self.name, resp.content)
                if status == 401 and not refreshed:  # the token expired under us: one new token
                    refreshed = True
                    self.token(refresh=True)
                    continue
                error = _google_error(resp)
                if status == 429 and _DAILY_QUOTA.search(error.get("message", "")):
                    raise PermanentError(
                        f"source {self.name}: GA4 property {src.property} has spent its daily quota "
                        f"(RESOURCE_EXHAUSTED: {error.get('message', '')})",
                        hint="the tokens come back at midnight Pacific time: run again then; ask for fewer "
                        "dimensions or days per run, or a GA4 360 property's higher quota",
                    )
                if status not in RETRY_STATUS:
                    raise self._permanent(status, error)
                problem = f"HTTP {status} {error.get('status', '')}".rstrip()
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
            if attempt >= src.max_retries or (wait is not None and wait > src.max_retry_wait):
                hint = (
                    " (GA4 quota: tokens per hour or concurrent requests; they come back within the hour)"
                    if status == 429
                    else ""
                )
                raise TransientError(
                    f"source {self.name}: GA4 runReport failed after {attempt + 1} request(s): "
                    f"{problem}{hint}",
                    retry_after=wait,
                )
            attempt += 1
            self.retries += 1
            if status is not None:
                self.retry_statuses.append(status)
            sleep = wait if wait is not None else min(delay * (1 + random.random() * 0.1), src.max_retry_wait)
            log.info("source %s: %s, retry %d in %.2fs", self.name, problem, attempt, sleep)
            time.sleep(sleep)
            self.waited_seconds += sleep
            delay *= 2

    def _permanent(self, status: int, error: dict[str, Any]) -> PermanentError:
        src, reason = self.source, f"{error.get('status', '')}: {error.get('message', '')}".strip(": ")
        hints = {
            400: "check the dimension and metric names (API names, e.g. deviceCategory, activeUsers) "
            "and that GA4 allows them together",
            401: "the service account's key was refused: create a new JSON key",
            403: f"give {self.info.get('client_email')} the Viewer role on property {src.property} "
            "(GA4 Admin > Property access management), and enable the Google Analytics Data API "
            "in its Google Cloud project",
            404: f"check the property id {src.property} (GA4 Admin > Property details)",
        }
        return PermanentError(
            f"source {self.name}: GA4 runReport for property {src.property} answered HTTP {status} "
            f"({reason or 'no detail'})",
            hint=hints.get(status, "check the source's settings against the GA4 Data API"),
        )

    def pages(self, start: str, end: str) -> tuple[list[pl.DataFrame], dict[str, Any]]:
        """Every page of the report as frames, and what the last response said (headers, quota)."""
        src = self.source
        body: dict[str, Any] = {
            "dateRanges": [{"startDate": start, "endDate": end}],
            "dimensions": [{"name": d} for d in src.dimensions],
            "metrics": [{"name": m} for m in src.metrics],
            "orderBys": [{"dimension": {"dimensionName": d}} for d in src.dimensions],
            "limit": src.page_size,
            "keepEmptyRows": src.keep_empty_rows,
            "returnPropertyQuota": True,
        }
        frames: list[pl.DataFrame] = []
        offset, row_count = 0, 0
        first: dict[str, Any] = {}
        while True:
            page, rows = self.run_report({**body, "offset": offset})
            first = first or page
            row_count = int(page.get("rowCount") or 0)  # proto3 JSON leaves out a zero
            frames.append(report_frame(first, rows, src.snake_case))
            offset += rows.height
            if not rows.height or offset >= row_count:
                break
        info = {"row_count": row_count, "pages": len(frames), "last": page, "first": first}
        return frames, info


def parse_report(name: str, content: bytes) -> tuple[dict[str, Any], pl.DataFrame]:
    """A runReport response: its fields but the rows (headers, rowCount, metadata, propertyQuota), and
    the rows as a frame, parsed by Polars straight from the bytes (no Python object per value)."""
    try:
        top = pl.read_json(io.BytesIO(content))
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise TransientError(
            f"source {name}: GA4 answered 200 without a JSON report ({type(exc).__name__})"
        ) from None
    if top.height != 1:
        raise TransientError(f"source {name}: GA4 answered 200 without a JSON report")
    page = top.drop("rows", strict=False).row(0, named=True)
    if "rows" not in top.columns:
        return page, pl.DataFrame(schema={"dimensionValues": _VALUES, "metricValues": _VALUES})
    rows = top.select(pl.col("rows").explode()).unnest("rows")
    for column in ("dimensionValues", "metricValues"):
        if column not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype=_VALUES).alias(column))
    return page, rows.select(pl.col("dimensionValues").cast(_VALUES), pl.col("metricValues").cast(_VALUES))


def _google_error(resp: httpx.Response) -> dict[str, Any]:
    """Google's error body {"error": {"code", "message", "status"}}; empty when it is not one."""
    try:
        error = resp.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def report_frame(headers: dict[str, Any], rows: pl.DataFrame, snake: bool) -> pl.DataFrame:
    """A page's rows (dimensionValues, metricValues) as a typed frame, by the report's headers."""
    dims = [h["name"] for h in headers.get("dimensionHeaders") or []]
    mets = [(h["name"], h.get("type") or "TYPE_INTEGER") for h in headers.get("metricHeaders") or []]
    exprs = []
    for i, dim in enumerate(dims):
        value = pl.col("dimensionValues").list.get(i, null_on_oob=True).struct.field("value")
        if dim == "date":
            value = value.str.strptime(pl.Date, "%Y%m%d", strict=True)
        exprs.append(value.alias(column_name(dim, snake)))
    for i, (metric, kind) in enumerate(mets):
        value = pl.col("metricValues").list.get(i, null_on_oob=True).struct.field("value")
        exprs.append(
            value.cast(pl.Int64 if kind == "TYPE_INTEGER" else pl.Float64, strict=True).alias(
                column_name(metric, snake)
            )
        )
    return rows.select(exprs)


def report_schema(source: Ga4Source) -> pl.Schema:
    """The columns a report will have, for `headwater validate` (metrics as Float64: their exact type
    comes with the response)."""
    return _empty(source).schema


def _empty(source: Ga4Source) -> pl.DataFrame:
    """No days to read: the columns the report would have (metrics as Float64: no headers to type them)."""
    schema: dict[str, pl.DataType] = {
        column_name(d, source.snake_case): pl.Date() if d == "date" else pl.String()
        for d in source.dimensions
    }
    schema.update({column_name(m, source.snake_case): pl.Float64() for m in source.metrics})
    return pl.DataFrame(schema=schema)


def read_ga4(
    name: str,
    source: Ga4Source,
    connections: Connections,
    base_dir: Path,
    watermark: Any = None,
    now: datetime | None = None,
) -> ExtractResult:
    """The report's rows; with `incremental`, the watermark is the last day asked for."""
    dates = report_range(source, watermark, now or datetime.now(UTC))
    if dates is None:
        return ExtractResult(_empty(source), metrics={"ga4_up_to_date": str(watermark), "http_requests": 0})
    reader = Ga4Reader(
        name, source, service_account_info(name, source.credentials, connections, base_dir), connections
    )
    try:
        frames, info = reader.pages(*dates)
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(
            f"source {name}: GA4 sent a value that does not fit its declared type ({type(exc).__name__})",
            hint="check the metrics' types in the report; a custom metric may need another type",
        ) from None
    finally:
        reader.client.close()
    frame = pl.concat(frames, how="vertical") if frames else _empty(source)
    quota = (info["last"].get("propertyQuota") or {}) if info["last"] else {}
    metrics: dict[str, Any] = {
        "http_requests": reader.requests,
        "http_retries": reader.retries,
        "http_retry_statuses": reader.retry_statuses,
        "http_retry_wait_seconds": round(reader.waited_seconds, 3),
        "ga4_dates": f"{dates[0]}..{dates[1]}",
        "ga4_pages": info["pages"],
        "ga4_row_count": info["row_count"],
        "ga4_time_zone": (info["first"].get("metadata") or {}).get("timeZone"),
        "ga4_tokens_per_day_remaining": (quota.get("tokensPerDay") or {}).get("remaining"),
    }
    if frame.height != info["row_count"]:
        raise TransientError(
            f"source {name}: GA4 reported {info['row_count']} rows but sent {frame.height} "
            "(the report changed while it was read)"
        )
    mark = date.fromisoformat(dates[1]) if source.incremental is not None else None
    return ExtractResult(frame, watermark=mark, metrics=metrics)
