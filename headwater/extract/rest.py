"""REST sources: JSON over HTTP with page, offset, cursor and next-link pagination.

Each request is retried on network errors, 429 and 5xx, honouring Retry-After; when the retries run
out the error is a TransientError so the step's retry policy may take over. 4xx other than 429
(401 included) is a PermanentError: retrying cannot help."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import polars as pl

from headwater.connections import Connections
from headwater.errors import PermanentError, TransientError
from headwater.extract.base import ExtractResult
from headwater.spec.models import RestSource

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 300.0


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def follow(body: Any, dotted: str | None) -> tuple[Any, list[str], str | None]:
    """Walk a dot path (keys, list indexes) into a JSON body: (what is there, the parts walked, the
    part that was not found or None)."""
    done: list[str] = []
    for part in dotted.split(".") if dotted else []:
        if isinstance(body, dict) and part in body:
            body = body[part]
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        else:
            return body, done, part
        done.append(part)
    return body, done, None


def dig(body: Any, dotted: str | None) -> Any:
    """The value at a dot path, or None where the path does not lead."""
    value, _, missing = follow(body, dotted)
    return None if missing is not None else value


def _shape(body: Any, dotted: str) -> str | None:
    """Where the path stops and what is there instead (keys, never values: they may be PII), or
    None when the path is there."""
    stop, done, part = follow(body, dotted)
    if part is None:
        return None
    at = ".".join(done) or "the top level"
    if isinstance(stop, dict):
        keys = ", ".join(list(map(str, stop))[:20]) or "none"
        return f"no key {part!r} at {at}; keys there: {keys}"
    kind = "a list" if isinstance(stop, list) else type(stop).__name__
    return f"{at} is {kind}, not an object with {part!r}"


class RestReader:
    def __init__(
        self, name: str, source: RestSource, connections: Connections, client: httpx.Client | None = None
    ) -> None:
        self.name, self.source = name, source
        headers = dict(source.headers)
        if source.auth:
            token = connections.token(source.auth)
            headers[source.auth.header] = f"{source.auth.scheme} {token}" if source.auth.scheme else token
        self.client = client or httpx.Client(timeout=source.timeout, headers=headers, follow_redirects=True)
        self.requests = 0
        self.retries = 0
        self.retry_statuses: list[int] = []

    def request(self, url: str, params: dict[str, Any]) -> httpx.Response:
        src = self.source
        delay = src.backoff
        for attempt in range(src.max_retries + 1):
            self.requests += 1
            wait: float | None = None
            try:
                resp = self.client.request(src.method, url, params=params or None, json=src.body)
            except httpx.TransportError as exc:
                problem, wait = f"{type(exc).__name__}: {exc}", None
                status = None
            else:
                status = resp.status_code
                if status < 400:
                    return resp
                if status not in RETRY_STATUS:
                    hint = (
                        "check the token (auth.token / the credentials block)"
                        if status in (401, 403)
                        else "check the URL and parameters"
                    )
                    raise PermanentError(
                        f"source {self.name}: {src.method} {url} answered HTTP {status}", hint=hint
                    )
                problem = f"HTTP {status}"
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
            if attempt == src.max_retries:
                raise TransientError(
                    f"source {self.name}: {src.method} {url} failed after "
                    f"{attempt + 1} request(s): {problem}",
                    retry_after=wait,
                )
            self.retries += 1
            if status:
                self.retry_statuses.append(status)
            sleep = min(wait if wait is not None else delay * (1 + random.random() * 0.1), MAX_RETRY_AFTER)
            log.info("source %s: %s, retry %d in %.2fs", self.name, problem, attempt + 1, sleep)
            time.sleep(sleep)
            delay *= 2
        raise AssertionError("unreachable")

    def records(self) -> list[dict[str, Any]]:
        src, pag = self.source, self.source.pagination
        url: str | None = src.url
        params: dict[str, Any] = dict(src.params)
        out: list[dict[str, Any]] = []
        if pag and pag.size_param and pag.size:
            params[pag.size_param] = pag.size
        counter = pag.start if pag and pag.start is not None else (1 if pag and pag.type == "page" else 0)
        for page_no in range(pag.max_pages if pag else 1):
            if pag and pag.type in ("page", "offset"):
                params[pag.param or ""] = counter
            resp = self.request(url or "", params)
            try:
                body = resp.json()
            except ValueError as exc:
                raise PermanentError(
                    f"source {self.name}: {url} did not answer JSON",
                    hint="check the URL; Headwater reads JSON APIs",
                ) from exc
            missing = _shape(body, src.records) if src.records else None
            if missing:
                if page_no > 0:  # a later page without the list: the end of the data
                    break
                raise PermanentError(
                    f"source {self.name}: records path {src.records!r} is not in the response of "
                    f"{src.method} {url} ({missing})",
                    hint="set records: to the dot path of the list of records in the response "
                    "(e.g. data.items), or remove it when the response is the list itself",
                )
            page = dig(body, src.records) if src.records else body
            if page is None:
                page = []
            if isinstance(page, dict):
                page = [page]
            if not isinstance(page, list):
                raise PermanentError(
                    f"source {self.name}: records {src.records!r} is not a list",
                    hint="set records: to the dot path of the list in the response",
                )
            out.extend(page)
            if not pag or not page:
                break
            if pag.type == "page":
                counter += 1
            elif pag.type == "offset":
                counter += len(page)
            elif pag.type == "cursor":
                nxt = dig(body, pag.cursor_path)
                if not nxt:
                    break
                params[pag.param or ""] = nxt
            else:
                nxt = dig(body, pag.next_path) if pag.next_path else resp.links.get("next", {}).get("url")
                if not nxt:
                    break
                url, params = str(resp.url.join(nxt)), {}
        return out


def read_rest(name: str, source: RestSource, connections: Connections) -> ExtractResult:
    reader = RestReader(name, source, connections)
    try:
        records = reader.records()
    finally:
        reader.client.close()
    frame = pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame()
    metrics = {
        "http_requests": reader.requests,
        "http_retries": reader.retries,
        "http_retry_statuses": reader.retry_statuses,
    }
    return ExtractResult(frame, metrics=metrics)
