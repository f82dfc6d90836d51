"""Circuit breakers: closed -> open -> half-open -> closed, kept in the store so that every worker
and process sees the same state.

A breaker is keyed by what it protects (a source's service: `rest:api.example.com:443`, a database,
or a key the spec names to share one breaker among pipelines; an alert channel: `channel:<name>`).
Closed, calls go through and the source's *unavailability* is counted: `failures` within `window`
seconds open it. Open, no call is made until `open_until`. Then it is half-open: at most
`half_open_probes` calls at once are let through as probes; a probe's success closes the breaker, its
failure opens it again for `open_for`. A probe that never reports (its process died) gives its slot
back after `open_for`.

Every change is one transaction on the breaker's row (PostgreSQL: SELECT ... FOR UPDATE; SQLite:
BEGIN IMMEDIATE), so two processes cannot both take the last probe or both miss a failure. A call
on a closed breaker reads its row and writes nothing. Every method takes `now`: nothing here reads
the wall clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from headwater.connections import Connections
from headwater.errors import PermanentError
from headwater.spec.models import BreakerSpec
from headwater.store.tables import circuit_breakers

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and for how long (the spec's `breaker:`, channels.yaml's `breaker:`)."""

    failures: int = 5
    """Failures within `window` that open the breaker."""
    window: float = 600.0
    """Seconds in which failures are counted (a sliding window)."""
    open_for: float = 300.0
    """Seconds the breaker stays open before probes are let through."""
    half_open_probes: int = 1
    """Calls let through at once while half-open."""


@dataclass(frozen=True)
class BreakerState:
    """One breaker as the store holds it."""

    key: str
    kind: str
    """source | channel"""
    state: str
    recent_failures: int
    """Failures counted in the last window (as of its last change)."""
    opened_at: datetime | None
    open_until: datetime | None
    last_error: str | None
    last_failure_at: datetime | None
    probes: int
    """Probes under way (half-open)."""
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "state": self.state,
            "recent_failures": self.recent_failures,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "open_until": self.open_until.isoformat() if self.open_until else None,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; hand it back with `succeeded`, `failed` or `released`."""

    key: str
    kind: str
    policy: BreakerPolicy
    probe: bool
    """The call is a half-open probe: its outcome closes or reopens the breaker."""


@dataclass(frozen=True)
class Transition:
    """A breaker changed state (what alerts are raised and resolved on)."""

    key: str
    before: str
    after: str
    at: datetime
    state: BreakerState


class CircuitOpen(PermanentError):
    """The breaker for `key` is open (or half-open with its probes under way): the call is not made."""

    def __init__(self, state: BreakerState) -> None:
        self.state = state
        self.key = state.key
        until = stamp(state.open_until)
        if state.state == HALF_OPEN:
            what = f"circuit half-open for {state.key}: a probe is under way (open until {until})"
        else:
            what = f"circuit open for {state.key} until {until}"
        since = f"; opened {stamp(state.opened_at)}" if state.opened_at else ""
        why = (
            f" after {state.recent_failures} failure(s), the last: {state.last_error}"
            if state.last_error
            else ""
        )
        self.reason = f"{what}{since}{why}"
        """The message without the fix."""
        super().__init__(
            self.reason,
            hint="the source is not called until then; a probe is let through after it. Set "
            "on_unavailable: use_last on the extract step to load the last good data meanwhile, or "
            f"run `headwater breakers --reset {state.key}` once the source is back",
        )


def stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "?"


def age_text(seconds: float) -> str:
    """How old, in words: 3 s, 4 min 10 s, 2 h 5 min, 3 d 4 h."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _times(values: Any) -> list[datetime]:
    return [datetime.fromisoformat(v) for v in values or []]


def _state(row: Any) -> BreakerState:
    return BreakerState(
        key=row.key,
        kind=row.kind,
        state=row.state,
        recent_failures=len(row.failure_times or []),
        opened_at=aware(row.opened_at),
        open_until=aware(row.open_until),
        last_error=row.last_error,
        last_failure_at=aware(row.last_failure_at),
        probes=row.probes,
        updated_at=aware(row.updated_at),  # type: ignore[arg-type]
    )


class Breakers:
    """The breakers in a store. Thread- and process-safe through the database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")

    # ------------------------------------------------------------ reads

    def get(self, key: str) -> BreakerState | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(circuit_breakers).where(circuit_breakers.c.key == key)).first()
        return _state(row) if row is not None else None

    def all(self) -> list[BreakerState]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(circuit_breakers).order_by(circuit_breakers.c.key)).all()
        return [_state(r) for r in rows]

    # ------------------------------------------------------------ calls

    def acquire(self, key: str, policy: BreakerPolicy, now: datetime, kind: str = "source") -> Permit:
        """Leave to call what `key` protects; raises CircuitOpen while the breaker is open (or
        half-open with every probe slot taken)."""
        current = self.get(key)
        if current is None or current.state == CLOSED:
            return Permit(key, kind, policy, probe=False)
        if current.state == OPEN and current.open_until is not None and now < current.open_until:
            raise CircuitOpen(current)
        with self.writer.begin() as conn:
            row = self._locked(conn, key, kind, now)
            state = _state(row)
            if state.state == CLOSED:  # another process closed it meanwhile
                return Permit(key, kind, policy, probe=False)
            if state.state == OPEN and state.open_until is not None and now < state.open_until:
                raise CircuitOpen(state)
            probes = state.probes
            lease = timedelta(seconds=policy.open_for)
            started = aware(row.probe_started_at)
            if state.state == HALF_OPEN and started is not None and now >= started + lease:
                probes = 0  # the probes under way never reported: their processes are gone
            if probes >= policy.half_open_probes:
                raise CircuitOpen(BreakerState(**{**vars(state), "state": HALF_OPEN, "probes": probes}))
            conn.execute(
                sa.update(circuit_breakers)
                .where(circuit_breakers.c.key == key)
                .values(state=HALF_OPEN, probes=probes + 1, probe_started_at=now, updated_at=now)
            )
        if state.state == OPEN:
            log.info("circuit breaker %s half-open: letting a probe through", key)
        return Permit(key, kind, policy, probe=True)

    def succeeded(self, permit: Permit, now: datetime) -> Transition | None:
        """The call worked. A probe's success (or any success while not closed) closes the breaker."""
        if not permit.probe:
            current = self.get(permit.key)
            if current is None or current.state == CLOSED:
                return None
        with self.writer.begin() as conn:
            row = self._locked(conn, permit.key, permit.kind, now)
            before = row.state
            values: dict[str, Any] = {"last_success_at": now, "updated_at": now}
            if before != CLOSED:
                values.update(
                    state=CLOSED,
                    failure_times=[],
                    opened_at=None,
                    open_until=None,
                    probes=0,
                    probe_started_at=None,
                )
            conn.execute(
                sa.update(circuit_breakers).where(circuit_breakers.c.key == permit.key).values(values)
            )
            after = conn.execute(
                sa.select(circuit_breakers).where(circuit_breakers.c.key == permit.key)
            ).one()
        if before == CLOSED:
            return None
        log.warning("circuit breaker %s closed: the source answered", permit.key)
        return Transition(permit.key, before, CLOSED, now, _state(after))

    def failed(self, permit: Permit, error: str, now: datetime) -> Transition | None:
        """The source was unavailable. Closed: counted, and `failures` within the window open it;
        a probe's failure opens it again for `open_for`."""
        policy = permit.policy
        until = now + timedelta(seconds=policy.open_for)
        with self.writer.begin() as conn:
            row = self._locked(conn, permit.key, permit.kind, now)
            before = row.state
            since = now - timedelta(seconds=policy.window)
            times = [t for t in _times(row.failure_times) if t > since] + [now]
            times = times[-max(policy.failures, 1) :]
            values: dict[str, Any] = {
                "failure_times": [t.isoformat() for t in times],
                "last_error": error[:2000],
                "last_failure_at": now,
                "updated_at": now,
                "policy": vars(policy),
            }
            opens = (before == CLOSED and len(times) >= policy.failures) or before == HALF_OPEN
            if opens:
                values.update(state=OPEN, opened_at=now, open_until=until, probes=0, probe_started_at=None)
            conn.execute(
                sa.update(circuit_breakers).where(circuit_breakers.c.key == permit.key).values(values)
            )
            after = conn.execute(
                sa.select(circuit_breakers).where(circuit_breakers.c.key == permit.key)
            ).one()
        if not opens:
            return None
        log.warning("circuit breaker %s open until %s: %s", permit.key, stamp(until), error)
        return Transition(permit.key, before, OPEN, now, _state(after))

    def released(self, permit: Permit, now: datetime) -> None:
        """The call ended in a way that says nothing about the source's availability (the spec was
        wrong, credentials were refused): a probe gives its slot back, nothing is counted."""
        if not permit.probe:
            return
        with self.writer.begin() as conn:
            row = self._locked(conn, permit.key, permit.kind, now)
            if row.state == HALF_OPEN and row.probes > 0:
                conn.execute(
                    sa.update(circuit_breakers)
                    .where(circuit_breakers.c.key == permit.key)
                    .values(probes=row.probes - 1, updated_at=now)
                )

    def reset(self, key: str, now: datetime) -> Transition | None:
        """Close a breaker by hand (the source is known to be back). None when it was closed."""
        return (
            self.succeeded(Permit(key, "source", BreakerPolicy(), probe=True), now) if self.get(key) else None
        )

    # ------------------------------------------------------------ internals

    def _locked(self, conn: sa.Connection, key: str, kind: str, now: datetime) -> Any:
        """The breaker's row, created closed when missing, locked for this transaction."""
        values = {
            "key": key,
            "kind": kind,
            "state": CLOSED,
            "failure_times": [],
            "probes": 0,
            "updated_at": now,
        }
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(circuit_breakers).values(values).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(circuit_breakers).values(values).on_conflict_do_nothing())
        return conn.execute(
            sa.select(circuit_breakers).where(circuit_breakers.c.key == key).with_for_update()
        ).one()


def open_breakers(engine: sa.Engine, now: datetime) -> list[BreakerState]:
    """Breakers that are not closed (open, or half-open), for readiness checks and the console: key,
    state, opened_at, open_until, last_error. An open breaker past its `open_until` is reported
    half-open (the next call is a probe)."""
    out = []
    for state in Breakers(engine).all():
        if state.state == CLOSED:
            continue
        if state.state == OPEN and state.open_until is not None and now >= state.open_until:
            state = BreakerState(**{**vars(state), "state": HALF_OPEN})
        out.append(state)
    return out


# ------------------------------------------------------------ sources


def policy_of(spec: BreakerSpec) -> BreakerPolicy:
    return BreakerPolicy(spec.failures, spec.window, spec.open_for, spec.half_open_probes)


def source_breaker(name: str, source: Any, connections: Connections) -> tuple[str, BreakerPolicy] | None:
    """(key, policy) of the breaker in front of a source; None for a source without one (files)
    or with `breaker: {enabled: false}`. The default key names the service, not the pipeline, so
    every pipeline calling it shares the breaker: rest:<scheme://host:port>, sql:<dialect://host:port/db>."""
    spec = getattr(source, "breaker", None)
    if not isinstance(spec, BreakerSpec) or not spec.enabled:
        return None
    if spec.key:
        return spec.key, policy_of(spec)
    kind = getattr(source, "kind", "source")
    if kind == "rest":
        parts = urlsplit(source.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"rest:{parts.scheme}://{parts.hostname}:{port}", policy_of(spec)
    if kind == "sql":
        ref = source.connection
        if ref is not None and ref.block:
            return f"sql:block:{ref.block}", policy_of(spec)
        try:
            url = sa.make_url(connections.url(ref))
        except sa.exc.ArgumentError:  # the extract itself says what is wrong with it
            return f"sql:{name}", policy_of(spec)
        where = f"{url.host}:{url.port}" if url.host else ""
        return f"sql:{url.get_backend_name()}://{where}/{url.database or ''}", policy_of(spec)
    return f"{kind}:{name}", policy_of(spec)
