"""Pydantic models of a pipeline spec. Strict: an unknown key anywhere is an error."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.durations import parse_duration
from headwater.spec.params import ParamType, as_text, coerce
from headwater.streams.alert_rules import StreamAlertRule
from headwater.streams.anomaly import AnomalySpec
from headwater.streams.windows import WindowSpec

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


Duration = Annotated[float, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(Strict):
    """How a step is retried. Only errors classed transient (network, 429/5xx, lock timeouts) are."""

    attempts: int = Field(1, ge=1, le=20, description="Total attempts including the first (1 = no retry).")
    delay: Duration = Field(1.0, description="Seconds before the first retry.")
    backoff: float = Field(2.0, ge=1.0, le=10.0, description="Each retry waits this many times longer.")
    jitter: float = Field(0.0, ge=0.0, le=1.0, description="Random spread of each delay, as a fraction.")
    max_delay: Duration = Field(300.0, description="No single delay is longer than this.")

    @field_validator("delay", "max_delay", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    def delays(self) -> list[float]:
        """The wait before each retry: delay, delay*backoff, ... capped at max_delay."""
        return [min(self.delay * self.backoff**i, self.max_delay) for i in range(self.attempts - 1)]


class ConnectionRef(Strict):
    """A database connection: a SQLAlchemy URL (from ${ENV}) or the name of a Prefect block."""

    url: str | None = Field(None, description="SQLAlchemy URL; put credentials in ${ENV_VARS}.")
    block: str | None = Field(None, description="Name of a saved headwater-database block.")

    @model_validator(mode="after")
    def _one_of(self) -> ConnectionRef:
        if (self.url is None) == (self.block is None):
            raise ValueError("give exactly one of url or block")
        return self


# ---------------------------------------------------------------- sources


class FileSource(Strict):
    """CSV/TSV, JSON/NDJSON or Parquet files: a path or a glob, relative to the spec's folder.

    `pkg:<package>/<path>` names a data file inside an installed Python package.
    """

    kind: Literal["file"]
    path: str
    format: Literal["csv", "tsv", "json", "ndjson", "parquet"] | None = Field(
        None, description="Read as this format; default from the file extension."
    )
    null_values: list[str] = Field(default_factory=list, description="Strings read as null (csv/tsv).")
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, description="Field separator (csv/tsv); same as `separator`."
    )
    separator: str | None = Field(
        None, min_length=1, max_length=1, description="Field separator (csv/tsv); default , or tab (tsv)."
    )
    encoding: str = Field(
        "utf-8",
        description="Text encoding of csv/tsv/json/ndjson files, any codec Python knows (latin-1, cp1252, "
        "utf-16...); other than UTF-8, files are decoded in Python before Polars reads them.",
    )
    skip_rows: int = Field(0, ge=0, description="Lines skipped before the header line (csv/tsv).")
    comment_prefix: str | None = Field(
        None, min_length=1, max_length=5, description="Lines starting with this are ignored (csv/tsv)."
    )
    quote_char: str | None = Field(
        '"', min_length=1, max_length=1, description="Quote around fields (csv/tsv); null: no quoting."
    )
    columns: dict[str, str] = Field(default_factory=dict, description="Column types forced on read.")
    infer_schema_length: int | None = Field(10_000, description="Rows used to infer types; null = all.")
    records: str | None = Field(None, description="Dot path to the list of records inside a JSON document.")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
            "a".encode(v)  # refuses bytes-to-bytes codecs such as base64
        except LookupError:
            raise ValueError(
                f"unknown text encoding {v!r}; use a name Python knows, e.g. utf-8, latin-1, cp1252, utf-16"
            ) from None
        except UnicodeError:
            pass
        return v

    @field_validator("delimiter", "separator", "quote_char")
    @classmethod
    def _one_byte(cls, v: str | None) -> str | None:
        if v is not None and (not v.isascii() or v in "\r\n"):
            raise ValueError(f"{v!r} is not one ASCII character other than a line break: use e.g. ';' or '|'")
        return v

    @model_validator(mode="after")
    def _one_separator(self) -> FileSource:
        if self.separator is not None and self.delimiter is not None:
            raise ValueError("separator and delimiter are the same option: give only one")
        if self.quote_char is not None and self.quote_char == self.field_separator:
            raise ValueError(
                f"quote_char and the separator are both {self.quote_char!r}: give a different quote_char"
            )
        return self

    @property
    def field_separator(self) -> str | None:
        """The separator given as `separator` or `delimiter`; None: the format's default."""
        return self.separator or self.delimiter


class BreakerSpec(Strict):
    """The circuit breaker in front of a service source (rest, sql); see headwater.breakers. Only the
    source's unavailability counts: network errors, timeouts, 429/5xx after the request's own
    retries, a database that does not answer (errors classed transient). A refused credential or a
    wrong spec does not: opening would only hide the real error behind "circuit open"."""

    enabled: bool = Field(True, description="false: no breaker, every run calls the source.")
    failures: int = Field(5, ge=1, le=1000, description="Failures within `window` that open the breaker.")
    window: Duration = Field(600.0, description="How far back failures are counted (e.g. '10m').")
    open_for: Duration = Field(300.0, description="How long it stays open before a probe (e.g. '5m').")
    half_open_probes: int = Field(1, ge=1, le=100, description="Calls let through at once while half-open.")
    key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:/@-]+$",
        description="Share one breaker among sources and pipelines that call the same service; "
        "default: rest:<scheme://host:port> or sql:<database> of the source.",
    )

    @field_validator("window", "open_for", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)


class Incremental(Strict):
    """Extract only rows whose cursor is past the stored watermark."""

    cursor: str = Field(..., pattern=_NAME, description="Monotonic column (timestamp or id).")
    initial: str | int | float | None = Field(None, description="Watermark before the first run.")


class SqlSource(Strict):
    """A table, or one read-only SELECT, in any SQLAlchemy database; optionally incremental by a cursor.

    `query:` is parsed (sqlglot, in the connection's dialect) when the spec loads and refused unless it is
    a single SELECT (or WITH ... SELECT) that writes nothing; its `:name` placeholders are bound from
    `params:`, never pasted into the SQL. `columns:` applies to `table:` only: select columns in the query.
    """

    kind: Literal["sql"]
    connection: ConnectionRef | None = Field(
        None, description="Where the table is; default: the pipeline's warehouse (read back what it loaded)."
    )
    table: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
        description="The table (or schema.table) to read; give this or `query`.",
    )
    query: str | None = Field(
        None, description="One read-only SELECT (or WITH ... SELECT) run in the database; or `table`."
    )
    params: dict[Annotated[str, Field(pattern=_NAME)], str | int | float | bool | None] = Field(
        default_factory=dict,
        validate_default=True,
        description="Values bound to the query's :name placeholders (never pasted into its text).",
    )
    columns: list[Annotated[str, Field(pattern=_NAME)]] | None = None
    incremental: Incremental | None = None
    breaker: BreakerSpec = Field(
        default_factory=BreakerSpec, description="The circuit breaker in front of it."
    )

    @field_validator("query")
    @classmethod
    def _read_only(cls, value: str | None, info: Any) -> str | None:  # info: pydantic's ValidationInfo
        if value is None:
            return None
        query = value.strip()
        while query.endswith(";"):
            query = query[:-1].rstrip()
        from headwater.extract.sql_query import check_select, url_dialect

        dialect = url_dialect(info.data.get("connection"))
        try:
            check_select(query, dialect)
        except ValueError as exc:
            if dialect is None and str(exc).startswith("query is not valid SQL"):
                # the database is unknown here (a block or the warehouse): its dialect checks it at run time
                return query
            raise
        return query

    @field_validator("params")
    @classmethod
    def _bound(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:  # info: ValidationInfo
        if "query" not in info.data:  # the query itself was refused
            return value
        query = info.data["query"]
        if query is None:
            if value:
                raise ValueError("params are bound into `query:`; a `table:` source takes none")
            return value
        from headwater.extract.sql_query import placeholders

        wanted = placeholders(query)
        missing = sorted(wanted - value.keys())
        if missing:
            names = ", ".join(f":{m}" for m in missing)
            raise ValueError(
                f"the query's placeholder(s) {names} have no value: give them under params "
                r"(a colon that is not a placeholder, e.g. inside a string, is written \:)"
            )
        unused = sorted(value.keys() - wanted)
        if unused:
            raise ValueError(
                f"param(s) {', '.join(unused)} appear nowhere in the query as :name "
                "(write CAST(:name AS type), not :name::type), or remove them"
            )
        return value

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.query is not None and self.columns is not None:
            raise ValueError("`columns` applies to `table:` only: name the columns in the query's SELECT")
        if self.query is not None and self.incremental and "watermark" in self.params:
            raise ValueError("param `watermark` is reserved for the incremental cursor's value: rename it")
        return self


class RestAuth(Strict):
    """An auth header whose token comes from ${ENV} or a block; never a literal."""

    header: str = "Authorization"
    scheme: str | None = Field("Bearer", description="Prefix before the token; null for none.")
    token: str | None = Field(None, description="The token, as ${ENV_VAR}.")
    block: str | None = Field(None, description="Name of a saved headwater-rest-credentials block.")

    @model_validator(mode="after")
    def _one_of(self) -> RestAuth:
        if (self.token is None) == (self.block is None):
            raise ValueError("give exactly one of token or block")
        return self


class Pagination(Strict):
    """How to walk the pages of an API.

    page: `param` carries 1, 2, 3...; offset: `param` carries 0, size, 2*size...;
    cursor: the next cursor is read from `cursor_path` in the body and sent in `param`;
    next_link: the next URL is read from `next_path` in the body (or the Link header).
    Paging stops at an empty page, a missing cursor/link, or `max_pages`.
    """

    type: Literal["page", "offset", "cursor", "next_link"]
    param: str | None = None
    size_param: str | None = None
    size: int | None = Field(None, ge=1)
    start: int | None = None
    cursor_path: str | None = None
    next_path: str | None = None
    max_pages: int = Field(10_000, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> Pagination:
        if self.type in ("page", "offset", "cursor") and not self.param:
            raise ValueError(f"{self.type} pagination needs `param`: set param: (the query parameter to set)")
        if self.type == "offset" and not self.size:
            raise ValueError("offset pagination needs `size`: set size: (records per page)")
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError(
                "cursor pagination needs `cursor_path`: "
                "set cursor_path: (where the next cursor is in the body)"
            )
        return self


class RestSource(Strict):
    """A JSON REST API."""

    kind: Literal["rest"]
    url: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    auth: RestAuth | None = None
    records: str | None = Field(None, description="Dot path to the list of records in the body.")
    pagination: Pagination | None = None
    timeout: Duration = 30.0
    max_retries: int = Field(4, ge=0, le=20, description="Retries of one request on 429/5xx/network.")
    backoff: Duration = Field(0.5, description="Seconds before the first request retry, doubling.")
    breaker: BreakerSpec = Field(
        default_factory=BreakerSpec, description="The circuit breaker in front of it."
    )

    @field_validator("timeout", "backoff", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)


_GA4_DATE = re.compile(r"^(today|yesterday|\d+daysAgo|\d{4}-\d{2}-\d{2})$")


def _ga4_date(value: str) -> str:
    if not _GA4_DATE.match(value):
        raise ValueError(
            f"{value!r} is not a GA4 date: write today, yesterday, NdaysAgo (e.g. 7daysAgo) or YYYY-MM-DD"
        )
    if value[0].isdigit() and "-" in value:
        date.fromisoformat(value)  # a real calendar day
    return value


class Ga4DateRange(Strict):
    """The days a report covers, inclusive, in GA4's own forms (relative to the property's time zone)."""

    start_date: str = Field("yesterday", description="today, yesterday, NdaysAgo or YYYY-MM-DD.")
    end_date: str = Field("yesterday", description="today, yesterday, NdaysAgo or YYYY-MM-DD.")

    @field_validator("start_date", "end_date")
    @classmethod
    def _form(cls, v: str) -> str:
        return _ga4_date(v)


class Ga4Incremental(Strict):
    """Read the days after the last one loaded (the watermark), up to yesterday in the property's time
    zone. The watermark moves in the load's transaction, as a SQL source's does."""

    initial: str = Field(
        "yesterday",
        description="The first day to read when nothing is loaded yet (yesterday, NdaysAgo or YYYY-MM-DD).",
    )
    lookback_days: int = Field(
        0,
        ge=0,
        le=30,
        description="Read this many already-loaded days again (GA4 revises recent days for ~72 hours); "
        "load with upsert so they replace what was there.",
    )

    @field_validator("initial")
    @classmethod
    def _form(cls, v: str) -> str:
        if v == "today":
            raise ValueError("today is never complete: the first day to read is yesterday at the latest")
        return _ga4_date(v)


class Ga4Credentials(Strict):
    """A Google service-account key with read access to the property (Viewer): its JSON from ${ENV},
    a key file, or a saved headwater-ga4-service-account block. Never a literal key."""

    credentials_json: str | None = Field(None, description="The key's JSON, as ${ENV_VAR}.")
    key_file: str | None = Field(None, description="Path of the key's JSON file (relative to the spec).")
    block: str | None = Field(None, description="Name of a saved headwater-ga4-service-account block.")

    @model_validator(mode="after")
    def _one_of(self) -> Ga4Credentials:
        given = [v for v in (self.credentials_json, self.key_file, self.block) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of credentials_json, key_file or block")
        return self


class Ga4Source(Strict):
    """A Google Analytics 4 report: the Data API's runReport (v1beta) for one property, paged by
    offset/limit, retried on 429/5xx. Columns: the dimensions (the `date` dimension as a Date), then the
    metrics typed from the response's metric headers (TYPE_INTEGER as Int64, the others as Float64)."""

    kind: Literal["ga4"]
    property: str = Field(..., pattern=r"^\d+$", description="The GA4 property id (digits).")
    dimensions: list[Annotated[str, Field(min_length=1)]] = Field(
        ..., min_length=1, max_length=9, description="API names, e.g. date, country, deviceCategory."
    )
    metrics: list[Annotated[str, Field(min_length=1)]] = Field(
        ..., min_length=1, max_length=10, description="API names, e.g. activeUsers, sessions."
    )
    date_range: Ga4DateRange = Field(
        default_factory=Ga4DateRange, description="The days to report; ignored when incremental."
    )
    incremental: Ga4Incremental | None = Field(
        None, description="Read from the day after the last one loaded up to yesterday (needs `date`)."
    )
    timezone: str = Field(
        "UTC", description="The property's reporting time zone (GA4 Admin > Property details)."
    )
    credentials: Ga4Credentials
    keep_empty_rows: bool = Field(False, description="Also rows whose metrics are all zero.")
    page_size: int = Field(10_000, ge=1, le=250_000, description="Rows per request (GA4 allows 250,000).")
    snake_case: bool = Field(True, description="Column names in snake_case (activeUsers -> active_users).")
    endpoint: str = Field(
        "https://analyticsdata.googleapis.com", description="The Data API's base URL (change only to test)."
    )
    timeout: Duration = 60.0
    max_retries: int = Field(5, ge=0, le=20, description="Retries of one request on 429/5xx/network.")
    backoff: Duration = Field(1.0, description="Seconds before the first request retry, doubling.")
    max_retry_wait: Duration = Field(
        120.0, description="Longest wait before one retry, Retry-After included (a longer one fails the try)."
    )

    @field_validator("timeout", "backoff", "max_retry_wait", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as America/New_York") from None
        return v

    @model_validator(mode="after")
    def _incremental_by_date(self) -> Ga4Source:
        if self.incremental is not None and "date" not in self.dimensions:
            raise ValueError("an incremental GA4 source needs the `date` dimension: add date to dimensions")
        if len(set(self.dimensions)) != len(self.dimensions) or len(set(self.metrics)) != len(self.metrics):
            raise ValueError("a dimension or metric is named twice: name each once")
        return self


WEBHOOK_COLUMNS = ("_event_id", "_event_key", "_received_at")
"""The columns a webhook source adds to every row: the stored event's id, its idempotency key and
when Headwater received it."""


class WebhookSignature(Strict):
    """Where the shared secret that signs an endpoint's posts is kept: the *name* of an environment
    variable of the API process (`headwater api`), or a Prefect Secret block the API loads. Never the
    secret itself. Posts carry `Headwater-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<t>.<raw body>">` (docs/webhooks.md)."""

    env: str | None = Field(
        None, description="Name of the environment variable holding the secret, e.g. N8N_WEBHOOK_SECRET."
    )
    block: str | None = Field(None, min_length=1, description="Name of a saved Prefect Secret block.")
    tolerance: Duration = Field(
        300.0, description="Largest difference between the signed timestamp and the API's clock ('5m')."
    )

    @field_validator("env")
    @classmethod
    def _a_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):  # never echo it: a secret?
            raise ValueError(
                "env is not a variable name: give the name of the environment variable that holds the "
                "secret (e.g. N8N_WEBHOOK_SECRET), not its value and not ${...}"
            )
        return v

    @field_validator("tolerance", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _one_of(self) -> WebhookSignature:
        if (self.env is None) == (self.block is None):
            raise ValueError("give exactly one of env or block")
        return self


class WebhookSource(Strict):
    """Events posted to `POST /api/webhooks/<endpoint>`, signed, stored by the API before it answers
    202. An extract reads the events its pipeline has not loaded yet, at most `batch_size` per run,
    oldest first; the last one read is committed with the load (a watermark), so each event is
    loaded once. Each event's JSON body becomes rows (the list at `records`, or the body itself),
    with the event's columns _event_id, _event_key, _received_at."""

    kind: Literal["webhook"]
    endpoint: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9_-]{1,100}$",
        description="The URL's last part: senders post to /api/webhooks/<endpoint>.",
    )
    signature: WebhookSignature = Field(..., description="The shared secret that signs the posts.")
    max_body_bytes: int = Field(
        1_048_576, ge=1, le=64 * 2**20, description="Larger posts are refused with 413 (default 1 MiB)."
    )
    batch_size: int = Field(10_000, ge=1, le=1_000_000, description="Most events one run loads.")
    records: str | None = Field(
        None, description="Dot path to the list of records in each body; none: the body is one record."
    )
    columns: dict[Annotated[str, Field(pattern=_NAME)], str] = Field(
        default_factory=dict,
        description="Column types forced on read; a value that does not convert is null. Declared "
        "columns exist even in a batch without them (an empty batch too).",
    )

    @field_validator("columns")
    @classmethod
    def _types(cls, columns: dict[str, str]) -> dict[str, str]:
        from headwater.transform.expressions import parse_dtype

        for name, type_name in columns.items():
            if name in WEBHOOK_COLUMNS:
                raise ValueError(f"{name} is a column the webhook source adds itself: remove it")
            parse_dtype(type_name)
        return columns


class RedisStreamSource(Strict):
    """Events in a Redis stream, read by a consumer group (only in a `type: streaming` spec, run by
    `headwater stream run`). Each entry becomes a row: the JSON document in the field `payload`, or
    the entry's field-value pairs; with the column `_entry_id` (the stream entry id)."""

    kind: Literal["redis_stream"]
    url: str | None = Field(
        None, description="redis:// URL (put a password in ${ENV}); default HEADWATER_REDIS_URL."
    )
    stream: str = Field(..., min_length=1, max_length=100, description="The stream's key.")
    group: str = Field(
        ..., min_length=1, max_length=80, description="The consumer group; created (MKSTREAM) if missing."
    )
    consumer: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="This consumer's name (its pending entries are its own after a restart); default: "
        "the host name. Give each process on one host its own name.",
    )
    batch_size: int = Field(1000, ge=1, le=100_000, description="Most entries read (and loaded) per batch.")
    block_ms: int = Field(1000, ge=1, le=60_000, description="How long one read waits for new entries (ms).")
    start: Literal["0", "$"] = Field(
        "0", description="Where a new group starts: 0 (the whole history) or $ (new entries only)."
    )
    payload: str | None = Field(
        None,
        min_length=1,
        description="The entry field holding a JSON document; none: the fields are the row.",
    )
    columns: dict[Annotated[str, Field(pattern=_NAME)], str] = Field(
        default_factory=dict,
        description="Column types forced after parsing; a value that does not convert is null.",
    )
    dead_letter: str | None = Field(
        None, min_length=1, max_length=200, description="The dead-letter stream; default <stream>:dead."
    )
    max_deliveries: int = Field(
        5, ge=1, le=1000, description="An entry delivered more often than this is dead-lettered as poison."
    )
    claim_idle_ms: int = Field(
        30_000,
        ge=1,
        le=86_400_000,
        description="Entries pending with another consumer for longer than this (ms) are claimed "
        "(XAUTOCLAIM): a crashed consumer's batch is finished by the others. Keep it above the longest "
        "batch time.",
    )

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        return "0" if v == 0 else v

    @field_validator("columns")
    @classmethod
    def _types(cls, columns: dict[str, str]) -> dict[str, str]:
        from headwater.transform.expressions import parse_dtype

        for type_name in columns.values():
            parse_dtype(type_name)
        return columns

    @property
    def dead_letter_stream(self) -> str:
        return self.dead_letter or f"{self.stream}:dead"


Source = Annotated[
    FileSource | SqlSource | RestSource | Ga4Source | WebhookSource | RedisStreamSource,
    Field(discriminator="kind"),
]

# ---------------------------------------------------------------- steps


class StepBase(Strict):
    name: str = Field(..., pattern=_NAME)
    depends_on: list[str] = Field(default_factory=list)
    critical: bool = Field(True, description="A non-critical step's failure leaves the run with warnings.")
    timeout: Duration | None = Field(None, description="Seconds (or '5m') before the step is failed.")
    retry: RetryPolicy | None = Field(None, description="Overrides the pipeline's retry policy.")
    samples: int | None = Field(
        None, ge=0, le=100, description="Rows kept as this step's masked sample; default: the pipeline's."
    )

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @property
    def primary_input(self) -> str | None:
        return self.depends_on[0] if self.depends_on else None


class ExtractStep(StepBase):
    type: Literal["extract"]
    source: str
    on_unavailable: Literal["fail", "use_last"] = Field(
        "fail",
        description="While the source's circuit breaker is open: fail (at once, without calling it) or "
        "use_last (load the last good extract, kept by Headwater; the run completes with warnings and "
        "records the data's age).",
    )


class TransformStep(StepBase):
    type: Literal["transform"]
    ops: list[dict[str, Any]] = Field(..., min_length=1, description="Ops applied in order.")

    @field_validator("ops")
    @classmethod
    def _one_key(cls, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, op in enumerate(ops):
            if len(op) != 1:
                raise ValueError(
                    f"op #{i + 1} must be a mapping with one key, the op name, e.g. `- filter: ...`"
                )
        return ops


class Expectation(Strict):
    name: str = Field(..., pattern=_NAME)
    rule: str = Field(..., description="SQL boolean expression every row must satisfy.")

    @field_validator("rule")
    @classmethod
    def _parses(cls, rule: str) -> str:
        from headwater.transform.expressions import parse_expr

        parse_expr(rule)  # the one parser of expressions: the same message as in a filter
        return rule


class ValidateStep(StepBase):
    """Checks the data before it loads. `suite`: a Great Expectations suite (JSON, path relative to
    the spec) whose rules warn, quarantine failing rows, or fail the run; the step's other inputs
    (depends_on after the first) are the tables its referential-integrity rules may name.
    `expect`/`min_rows`: quick SQL rules; any failure fails the step."""

    type: Literal["validate"]
    suite: str | None = Field(None, description="Path of a quality suite (JSON), relative to the spec.")
    expect: list[Expectation] = Field(default_factory=list)
    min_rows: int | None = Field(None, ge=0)


WriteMode = Literal["append", "overwrite", "upsert"]


class Destination(Strict):
    table: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    mode: WriteMode = "append"
    primary_key: list[Annotated[str, Field(pattern=_NAME)]] = Field(default_factory=list)
    warehouse: ConnectionRef | None = Field(None, description="Default: the pipeline's warehouse.")
    allow_empty: bool = Field(
        False,
        description="overwrite: let a load with no rows empty a table that has rows (refused otherwise).",
    )

    @model_validator(mode="after")
    def _pk(self) -> Destination:
        if self.mode == "upsert" and not self.primary_key:
            raise ValueError("mode upsert needs a key: give primary_key: [the columns that identify a row]")
        return self


class LoadStep(StepBase):
    type: Literal["load"]
    destination: Destination


class NotifyStep(StepBase):
    type: Literal["notify"]
    message: str
    channels: list[str] = Field(default_factory=list)


class WindowStep(StepBase):
    """Streaming specs only: groups its input's events into event-time windows; the load step that
    depends on it loads the closed windows (see docs/windows.md)."""

    type: Literal["window"]
    window: WindowSpec


class AnomalyStep(StepBase):
    """Streaming specs only: adds <column>_zscore per scored column and `anomaly` to each event,
    against the same key's events over the `over` seconds before it (headwater/streams/anomaly.py)."""

    type: Literal["anomaly"]
    anomaly: AnomalySpec


class AlertStep(StepBase):
    """Streaming specs only: alert rules on its input's rows (the events, the events that passed the
    rules, scored events, or closed windows), one alert per rule and key, through the alert engine's
    channels (headwater/streams/alerts.py)."""

    type: Literal["alert"]
    key: list[Annotated[str, Field(pattern=_NAME)]] = Field(
        default_factory=list, description="One alert per rule and value of these columns (e.g. patient_id)."
    )
    time_column: str | None = Field(
        None, description="Event time of a row, for `for` (default: window_end after a window step)."
    )
    rules: list[StreamAlertRule] = Field(min_length=1)
    channels: list[str] = Field(
        default_factory=list, description="Channels of channels.yaml; none: the severity's channels."
    )
    clear_after: Duration = Field(
        300.0, description="An open alert resolves when no row fired it for this long ('5m')."
    )

    @field_validator("clear_after", mode="before")
    @classmethod
    def _clear(cls, v: Any) -> float:
        return parse_duration(v)


class PublishStep(StepBase):
    """Streaming specs only: writes its input's rows (events or closed windows) to another Redis
    stream, each row once however often its batch is redone."""

    type: Literal["publish"]
    stream: str = Field(min_length=1, description="The stream's key.")
    maxlen: int | None = Field(
        None, gt=0, description="Trim the stream to about this many entries (XADD MAXLEN ~)."
    )


STREAM_ONLY_STEPS = ("window", "anomaly", "alert", "publish")

Step = Annotated[
    ExtractStep
    | TransformStep
    | ValidateStep
    | LoadStep
    | NotifyStep
    | WindowStep
    | AnomalyStep
    | AlertStep
    | PublishStep,
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- pipeline

ParamValue = str | int | float | bool | date


class ParamSpec(Strict):
    """A value a person sets per run (console form, `headwater run --param`, Prefect UI), used in
    any string of the spec as `${params.NAME}`. Give a default, or mark it required."""

    type: ParamType = Field(..., description="string | integer | number | boolean | date (YYYY-MM-DD).")
    default: ParamValue | None = Field(None, description="The value when a run gives none.")
    description: str = Field("", description="What the parameter changes, shown where a run is started.")
    choices: list[ParamValue] | None = Field(
        None, min_length=1, description="The only values allowed; none: any value of the type."
    )
    required: bool = Field(False, description="A run must give a value; such a parameter has no default.")

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.required and self.default is not None:
            raise ValueError("a required parameter has no default: remove default or required")
        if not self.required and self.default is None:
            raise ValueError("give a default, or set required: true (a run must then give a value)")
        try:
            choices = [coerce(self.type, c) for c in self.choices or []]
        except ValueError as exc:
            raise ValueError(f"choices: {exc}") from None
        if self.default is not None:
            try:
                default = coerce(self.type, self.default)
            except ValueError as exc:
                raise ValueError(f"default: {exc}") from None
            if choices and default not in choices:
                raise ValueError(
                    f"default {as_text(default)!r} is not one of the choices "
                    f"({', '.join(as_text(c) for c in choices)})"
                )
        return self


Params = dict[Annotated[str, Field(pattern=_NAME)], ParamSpec]


class Schedule(Strict):
    """A cron expression in an IANA time zone, or a fixed interval."""

    cron: str | None = None
    timezone: str = "UTC"
    interval: Duration | None = None

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _one_of(self) -> Schedule:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        return self


class Triggers(Strict):
    """Run after other pipelines complete (a Prefect deployment trigger on their flow runs)."""

    after: list[Annotated[str, Field(pattern=_NAME)]] = Field(
        ..., min_length=1, description="Pipelines whose completed runs start this one."
    )
    require: Literal["any", "all"] = Field(
        "any", description="any: after each completed run of one of them; all: once every one has completed."
    )
    within: Duration = Field(
        86400.0, description="With require: all, how close together their runs must complete (e.g. '6h')."
    )

    @field_validator("within", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _distinct(self) -> Triggers:
        if len(set(self.after)) != len(self.after):
            raise ValueError("after: a pipeline is named twice")
        return self


class Fresher(Strict):
    """The upstream table changed since this pipeline last ran."""

    table: str = Field(..., min_length=1, description="A table in the pipeline's warehouse.")
    column: str | None = Field(
        None,
        description="A timestamp column of it: fresher when its latest value is past the last run's "
        "start. None: when a Headwater run last loaded the table.",
    )


class Preconditions(Strict):
    """What must be true for a scheduled or triggered run to do anything; otherwise the run is recorded
    `skipped` with the reason. All given conditions must hold. A manual run or a backfill ignores them."""

    new_files: str | None = Field(
        None, description="A glob (from the spec's folder): a matching file changed since the last run."
    )
    new_rows: str | None = Field(
        None, description="An incremental SQL source: it has rows past its watermark."
    )
    fresher: Fresher | None = Field(None, description="An upstream table fresher than the last run.")

    @model_validator(mode="after")
    def _some(self) -> Preconditions:
        if self.new_files is None and self.new_rows is None and self.fresher is None:
            raise ValueError("give at least one of new_files, new_rows, fresher")
        return self


class WorkPool(Strict):
    """Where the pipeline's runs go: a Prefect work pool and queue; workers of that pool run them."""

    name: str = Field("headwater", min_length=1, description="The work pool (a process pool by default).")
    queue: str = Field("default", min_length=1, description="The work queue in the pool.")
    priority: int | None = Field(
        None, ge=1, description="The queue's priority in its pool (1 is served first); None: as it is."
    )


AlertOn = Literal["failure", "warning", "success"]


def _on_failure() -> list[AlertOn]:
    return ["failure"]


class AlertSettings(Strict):
    """This pipeline's own alerts, through the alert engine (HEADWATER_ALERTS): which outcomes, to
    which channels of channels.yaml, owned by whom. Added to the rules of rules.yaml, not instead."""

    owner: str | None = Field(
        None, description="Who answers for them, named in every message (default: owner)."
    )
    channels: list[str] = Field(
        default_factory=list, description="Channel names in channels.yaml; none: the severity's channels."
    )
    on: list[AlertOn] = Field(
        default_factory=_on_failure,
        description="failure (critical), warning (a run completed with warnings), success (info).",
    )


SlaDay = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SLA_DAYS: tuple[SlaDay, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class Sla(Strict):
    """Service levels the pipeline promises (headwater.sla measures them per day in `timezone`; the
    alert engine raises sla_breach, sla_projected_miss and sla_missed_run). Give at least one of
    success_rate, max_duration, freshness, deadline."""

    success_rate: float | None = Field(
        None,
        description="Percent (0-100, like every score here) of finished runs over `window` that must "
        "succeed (completed or completed_with_warnings; failed and crashed fail; skipped runs do not count).",
    )
    window: Duration = Field(
        30 * 86400.0, description="The success rate's window, in whole days (e.g. '30d'); also the report's."
    )
    max_duration: Duration | None = Field(None, description="No finished run takes longer (e.g. '20m').")
    freshness: Duration | None = Field(
        None, description="The last successful run finished no longer ago than this (e.g. '26h')."
    )
    deadline: str | None = Field(
        None, description="'HH:MM' local time by which a successful run has finished, each day in `days`."
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone of the deadline and of the days (default: the schedule's, else UTC).",
    )
    days: list[SlaDay] = Field(
        default_factory=lambda: list(SLA_DAYS), description="Days the deadline applies (default: every day)."
    )

    @field_validator("window", "max_duration", "freshness", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @field_validator("window")
    @classmethod
    def _whole_days(cls, v: float) -> float:
        if v % 86400:
            raise ValueError(f"the window is counted in whole days: write e.g. '{max(1, round(v / 86400))}d'")
        return v

    @field_validator("success_rate")
    @classmethod
    def _percent(cls, v: float | None) -> float | None:
        if v is not None and not 1 < v <= 100:
            hint = f"write {v * 100:g} for {v:.0%}" if 0 < v <= 1 else "give a percent, e.g. 99"
            raise ValueError(f"{v:g} is not a percent (0-100, as success rates are shown): {hint}")
        return v

    @field_validator("deadline", mode="before")
    @classmethod
    def _clock(cls, v: Any) -> str | None:
        if v is None:
            return None
        match = _CLOCK.match(str(v).strip())
        if not match:
            raise ValueError(f"{v!r} is not a time of day: write 'HH:MM' in quotes, e.g. deadline: \"07:30\"")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}: give an IANA name, e.g. Europe/London or UTC"
            ) from None
        return v

    @model_validator(mode="after")
    def _some(self) -> Sla:
        wanted = (self.success_rate, self.max_duration, self.freshness, self.deadline)
        if all(v is None for v in wanted):
            raise ValueError("give at least one of success_rate, max_duration, freshness, deadline")
        if not self.days:
            raise ValueError("days: name at least one day, e.g. [mon, tue, wed, thu, fri]")
        return self

    @property
    def window_days(self) -> int:
        return int(self.window // 86400)


class PipelineSpec(Strict):
    name: str = Field(..., pattern=_NAME)
    type: Literal["etl", "sync", "reporting", "streaming"] = Field(
        "etl", description="streaming: a stream processor (headwater stream run), not a scheduled run."
    )
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None
    warehouse: ConnectionRef | None = Field(None, description="Default: HEADWATER_WAREHOUSE_URL.")
    sources: dict[str, Source] = Field(..., min_length=1)
    steps: list[Step] = Field(..., min_length=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    schedule: Schedule | None = None
    triggers: Triggers | None = None
    when: Preconditions | None = None
    concurrency: int | None = Field(
        1, ge=1, description="Most runs of this pipeline at once (more wait their turn); null: no limit."
    )
    work_pool: WorkPool = Field(default_factory=WorkPool)
    alerts: AlertSettings | None = None
    sla: Sla | None = Field(None, description="Service levels: measured per day, alerted when missed.")
    pii: list[str] = Field(default_factory=list, description="Extra columns masked in samples.")
    samples: int = Field(5, ge=0, le=100, description="Rows kept per step as a masked sample (0: none).")
    params: Params = Field(
        default_factory=dict, description="Run parameters, used in strings as ${params.NAME}."
    )

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def retry_for(self, step: StepBase) -> RetryPolicy:
        return step.retry or self.retry

    def warehouse_of(self, load: LoadStep) -> ConnectionRef | None:
        """The one answer to "where does this load write": its destination's warehouse, else the
        pipeline's; None means the process default (HEADWATER_WAREHOUSE_URL)."""
        return load.destination.warehouse or self.warehouse

    def warehouse_for(self, table: str | None = None) -> ConnectionRef | None:
        """Where the load of `table` writes (its quarantine is there too); without a table, or with
        one no load names, the first load's warehouse, else the pipeline's."""
        loads = [s for s in self.steps if isinstance(s, LoadStep)]
        load = next((s for s in loads if s.destination.table == table), loads[0] if loads else None)
        return self.warehouse_of(load) if load else self.warehouse
