"""A local GA4 Data API (v1beta) for tests and benchmarks: the documented `runReport` request and
response shapes, and a real OAuth token endpoint for service-account keys.

- `POST /token`: the JWT-bearer grant (RFC 7523) google-auth sends; the assertion's RS256 signature is
  checked with the test key's public key, and its iss, aud, scope and expiry; the answer is an access
  token.
- `POST /v1beta/properties/{id}:runReport`: refuses a missing or unknown bearer token (401
  UNAUTHENTICATED), another property (403 PERMISSION_DENIED), unknown dimensions or metrics (400
  INVALID_ARGUMENT); resolves `today`, `yesterday`, `NdaysAgo` and ISO dates in the property's time
  zone; orders by `orderBys`; pages by `offset`/`limit`; answers dimensionHeaders, metricHeaders with
  their types, rows of dimensionValues/metricValues as strings (`date` as YYYYMMDD), rowCount,
  metadata (currencyCode, timeZone), propertyQuota when returnPropertyQuota, kind. As proto3 JSON
  does, a zero rowCount and an empty rows list are left out.
- Faults: `fail_at[offset]` holds replies (status, headers, body) that the next requests at that
  offset get before the real answer: e.g. a 429 with Retry-After on page 2.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.http_json import reply_json

SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
CLIENT_EMAIL = "headwater-sync@hw-test-project.iam.gserviceaccount.com"
METRIC_TYPES = {
    "activeUsers": "TYPE_INTEGER",
    "sessions": "TYPE_INTEGER",
    "screenPageViews": "TYPE_INTEGER",
    "averageSessionDuration": "TYPE_SECONDS",
    "purchaseRevenue": "TYPE_CURRENCY",
    "engagementRate": "TYPE_FLOAT",
}
DIMENSIONS = ("date", "country", "deviceCategory")
COUNTRIES = ("Brazil", "Canada", "France", "Germany", "India", "Japan", "Kenya", "Mexico", "Spain")
DEVICES = ("desktop", "mobile", "tablet")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


@dataclass(frozen=True)
class ServiceAccountKey:
    """A fresh RSA key and the service-account JSON Google would issue for it (token_uri: ours)."""

    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> ServiceAccountKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def info(self, token_uri: str) -> dict[str, str]:
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "hw-test-project",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        }


def make_rows(days: list[date], countries: tuple[str, ...] = COUNTRIES, devices: tuple[str, ...] = DEVICES):
    """Deterministic report rows: one per (day, country, device), every metric of METRIC_TYPES, as
    Python values (the test's independent truth)."""
    rows = []
    for day in days:
        for c, country in enumerate(countries):
            for d, device in enumerate(devices):
                seed = day.toordinal() * 7919 + c * 131 + d * 17
                users = 50 + seed % 997
                rows.append(
                    {
                        "date": day,
                        "country": country,
                        "deviceCategory": device,
                        "activeUsers": users,
                        "sessions": users + seed % 113,
                        "screenPageViews": 3 * users + seed % 29,
                        "averageSessionDuration": round(30 + (seed % 5000) / 37, 6),
                        "purchaseRevenue": round((seed % 100_000) / 100, 2),
                        "engagementRate": round((seed % 1000) / 1000, 3),
                    }
                )
    return rows


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def quota_error(message: str) -> dict[str, Any]:
    return {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}


@dataclass
class ReportCall:
    """One runReport request as received."""

    body: dict[str, Any]
    status: int
    at: float


class Ga4Api:
    """The state behind the server: the property's rows, issued tokens, scripted faults, a log."""

    def __init__(
        self, key: ServiceAccountKey, rows: list[dict[str, Any]], property_id: str, timezone: str
    ) -> None:
        self.public = key.private.public_key()
        self.rows = rows
        self.property_id = property_id
        self.timezone = timezone
        self.port = 0
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.calls: list[ReportCall] = []
        self.fail_at: dict[int, deque[Fault]] = {}
        self.lock = threading.Lock()
        self.tokens_per_day = 200_000
        self._selected: dict[str, list[dict[str, Any]]] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def fail(self, offset: int, *faults: Fault) -> None:
        self.fail_at.setdefault(offset, deque()).extend(faults)

    # ------------------------------------------------------------ token endpoint

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            head, payload, sig = form["assertion"].encode().split(b".")
            self.public.verify(_b64(sig), head + b"." + payload, padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(_b64(payload))
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        ok = (
            claims.get("iss") == CLIENT_EMAIL
            and claims.get("aud") in (GOOGLE_TOKEN_URI, self.token_uri)  # google-auth names Google's
            and SCOPE in str(claims.get("scope", "")).split()
            and claims.get("exp", 0) > time.time()
        )
        if not ok:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."}
        token = "ya29.test-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    # ------------------------------------------------------------ runReport

    def _day(self, value: str) -> date:
        today = datetime.now(ZoneInfo(self.timezone)).date()
        if value == "today":
            return today
        if value == "yesterday":
            return today - timedelta(days=1)
        match = re.fullmatch(r"(\d+)daysAgo", value)
        return today - timedelta(days=int(match.group(1))) if match else date.fromisoformat(value)

    def report(self, prop: str, auth: str | None, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        def error(code: int, status: str, message: str) -> tuple[int, dict[str, str], Any]:
            return code, {}, {"error": {"code": code, "message": message, "status": status}}

        token = (auth or "").removeprefix("Bearer ")
        if token not in self.tokens:
            return error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if prop != self.property_id:
            return error(
                403, "PERMISSION_DENIED", "User does not have sufficient permissions for this property."
            )
        offset = int(body.get("offset", 0))
        with self.lock:
            queue = self.fail_at.get(offset)
            if queue:
                fault = queue.popleft()
                return fault.status, fault.headers, fault.body or {"error": {"code": fault.status}}
        dims = [d["name"] for d in body.get("dimensions", [])]
        mets = [m["name"] for m in body.get("metrics", [])]
        for name in dims:
            if name not in DIMENSIONS:
                return error(400, "INVALID_ARGUMENT", f"Field {name} is not a valid dimension.")
        for name in mets:
            if name not in METRIC_TYPES:
                return error(400, "INVALID_ARGUMENT", f"Field {name} is not a valid metric.")
        if sorted(dims) != sorted(DIMENSIONS):
            return error(400, "INVALID_ARGUMENT", f"this test server reports by exactly {DIMENSIONS}")
        (span,) = body["dateRanges"]
        start, end = self._day(span["startDate"]), self._day(span["endDate"])
        if start > end:
            return error(400, "INVALID_ARGUMENT", "startDate must be on or before endDate.")
        query = json.dumps([start.isoformat(), end.isoformat(), body.get("orderBys", [])])
        rows = self._selected.get(query)
        if rows is None:  # the report's rows in order, kept for its next pages
            rows = [r for r in self.rows if start <= r["date"] <= end]
            for order in reversed(body.get("orderBys", [])):
                name = order["dimension"]["dimensionName"]
                rows.sort(key=lambda r, n=name: str(r[n]), reverse=bool(order.get("desc")))
            self._selected[query] = rows
        limit = int(body.get("limit", 10_000))
        page = rows[offset : offset + limit]
        out: dict[str, Any] = {
            "dimensionHeaders": [{"name": d} for d in dims],
            "metricHeaders": [{"name": m, "type": METRIC_TYPES[m]} for m in mets],
        }
        if page:
            out["rows"] = [
                {
                    "dimensionValues": [
                        {"value": r[d].strftime("%Y%m%d") if d == "date" else r[d]} for d in dims
                    ],
                    "metricValues": [{"value": str(r[m])} for m in mets],
                }
                for r in page
            ]
        if rows:
            out["rowCount"] = len(rows)
        out["metadata"] = {"currencyCode": "USD", "timeZone": self.timezone}
        if body.get("returnPropertyQuota"):
            self.tokens_per_day -= 10
            out["propertyQuota"] = {
                "tokensPerDay": {"consumed": 10, "remaining": self.tokens_per_day},
                "tokensPerHour": {"consumed": 10, "remaining": 39_990},
                "concurrentRequests": {"consumed": 0, "remaining": 10},
            }
        out["kind"] = "analyticsData#runReport"
        return 200, {}, out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: Ga4Api


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    _REPORT = re.compile(r"^/v1beta/properties/(\d+):runReport$")

    def do_POST(self) -> None:
        api = self.server.api
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/token":
            status, body = api.grant(dict(parse_qsl(raw.decode())))
            reply_json(self, json.dumps(body).encode(), status)
            return
        match = self._REPORT.match(self.path)
        if not match:
            reply_json(self, b'{"error": {"code": 404, "status": "NOT_FOUND"}}', 404)
            return
        request = json.loads(raw or b"{}")
        status, headers, body = api.report(match.group(1), self.headers.get("Authorization"), request)
        with api.lock:
            api.calls.append(ReportCall(request, status, time.monotonic()))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Ga4Server:
    """`with Ga4Server(...) as api:` serves on a free port of 127.0.0.1 until the block ends."""

    def __init__(
        self,
        key: ServiceAccountKey,
        rows: list[dict[str, Any]],
        property_id: str = "123456789",
        timezone: str = "UTC",
    ) -> None:
        self.api = Ga4Api(key, rows, property_id, timezone)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self.api
        self.api.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Ga4Api:
        self._thread.start()
        return self.api

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
