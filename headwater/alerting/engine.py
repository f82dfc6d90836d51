"""Alert instances: open -> acknowledged -> resolved, or suppressed while a silence covers them.

One open instance per fingerprint (rule, pipeline, condition); one message per run and channel with
every condition that fired; auto-resolve on a clean run; escalation when nobody acknowledges; silences,
quiet hours and maintenance windows hold back only what they cover, and what they hold is recorded.
Every method takes `now`: the engine never reads the wall clock."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.alerting.config import AlertRule, AlertRules, Channels, load_folder
from headwater.alerting.delivery import AppriseDeliverer, Deliverer, DeliveryFailed
from headwater.alerting.facts import RunFacts
from headwater.alerting.messages import alert_message, resolved_message, run_details
from headwater.alerting.records import (
    ACTIVE,
    MATCHER_KEYS,
    Delivery,
    MttaMttr,
    Silence,
    as_delivery,
    as_dict,
    aware,
    new_plan,
    raise_failures,
)
from headwater.breakers import BreakerPolicy, Breakers, CircuitOpen
from headwater.errors import PermanentError
from headwater.store.tables import alert_deliveries, alert_instances, alert_silences, pipeline_alerts

log = logging.getLogger(__name__)
FIRINGS_KEPT = 1000
"""A stream alert instance remembers the ids of the last firings it counted (a firing handled again
after a crash is not counted twice)."""


def fingerprint(rule: AlertRule, pipeline: str) -> str:
    return hashlib.sha256(f"{rule.name}\x00{pipeline}\x00{rule.when.key()}".encode()).hexdigest()


class AlertEngine:
    def __init__(
        self,
        engine: sa.Engine,
        channels: Channels,
        rules: AlertRules,
        deliver: Deliverer | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        if problems := rules.reference_problems(channels):
            raise PermanentError(
                "; ".join(str(p) for p in problems), hint="define the channels in channels.yaml"
            )
        self.engine = engine
        self.writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        self.channels = channels
        self.rules = rules
        self.deliver = deliver or AppriseDeliverer(
            channels.delivery.attempts, channels.delivery.backoff_seconds
        )
        self.secrets = list(secrets)
        self._by_name = {r.name: r for r in rules.rules}
        self.breakers = Breakers(engine)

    # ------------------------------------------------------------ rules

    def sync_rules(self, now: datetime) -> None:
        """Record the configured rules in pipeline_alerts (replacing what was there)."""
        with self.writer.begin() as conn:
            conn.execute(sa.delete(pipeline_alerts))
            if self.rules.rules:
                conn.execute(
                    sa.insert(pipeline_alerts),
                    [
                        {
                            "name": r.name,
                            "pipeline_name": r.pipeline,
                            "severity": r.severity,
                            "condition": r.when.model_dump(mode="json"),
                            "channels": self.rules.channels_for(r),
                            "escalation": r.escalation.model_dump() if r.escalation else None,
                            "enabled": r.enabled,
                            "updated_at": now,
                        }
                        for r in self.rules.rules
                    ],
                )

    def _levels_of(self, inst: Mapping[str, Any]) -> list[list[str]]:
        """An instance's channel levels: a stream alert's own channels (its alert step's), else its
        rule's and escalation's."""
        own = (inst.get("details") or {}).get("channels")
        if own:
            return [list(own)]
        return self._levels(inst["rule_name"], inst["severity"])

    def _levels(self, rule_name: str, severity: str) -> list[list[str]]:
        rule = self._by_name.get(rule_name)
        if rule is None:  # the rule was removed from the config: its severity's channels still apply
            return [list(self.rules.severity_channels.get(severity, []))]  # type: ignore[call-overload]
        levels = [self.rules.channels_for(rule)]
        return levels + ([list(lvl) for lvl in rule.escalation.levels] if rule.escalation else [])

    def _every(self, rule_name: str) -> timedelta | None:
        rule = self._by_name.get(rule_name)
        return timedelta(minutes=rule.escalation.after_minutes) if rule and rule.escalation else None

    # ------------------------------------------------------------ runs

    def process_run(self, facts: RunFacts, now: datetime) -> list[Delivery]:
        """Evaluate every rule for the run's pipeline: open, re-fire (no message), or resolve instances;
        then send one message per channel. Raises NotificationError after recording a refusal."""
        opened: list[dict[str, Any]] = []
        resolved: list[dict[str, Any]] = []
        silences = self.silences(now)
        with self.writer.begin() as conn:
            for rule in self.rules.rules:
                if not rule.enabled or not fnmatchcase(facts.pipeline, rule.pipeline or "*"):
                    continue
                fp = fingerprint(rule, facts.pipeline)
                current = conn.execute(
                    sa.select(alert_instances).where(
                        alert_instances.c.fingerprint == fp, alert_instances.c.status.in_(ACTIVE)
                    )
                ).first()
                fired = rule.when.fired(facts, now)
                if fired and current is not None:
                    conn.execute(
                        sa.update(alert_instances)
                        .where(alert_instances.c.id == current.id)
                        .values(
                            last_seen_at=now,
                            last_run_id=facts.run_id,
                            occurrences=current.occurrences + 1,
                            details=run_details(facts, fired),
                        )
                    )
                elif fired:
                    values = {
                        "fingerprint": fp,
                        "active_fingerprint": fp,
                        "rule_name": rule.name,
                        "pipeline_name": facts.pipeline,
                        "severity": rule.severity,
                        "condition_key": rule.when.key(),
                        "details": run_details(facts, fired),
                        "first_run_id": facts.run_id,
                        "last_run_id": facts.run_id,
                        "occurrences": 1,
                        "level": 0,
                        "opened_at": now,
                        "last_seen_at": now,
                    }
                    silenced = any(s.covers(values) for s in silences)
                    every = self._every(rule.name)
                    values["status"] = "suppressed" if silenced else "open"
                    values["next_escalation_at"] = now + every if every and not silenced else None
                    new_id = conn.execute(sa.insert(alert_instances).values(values)).inserted_primary_key[0]  # type: ignore[index]
                    opened.append({**values, "id": int(new_id)})
                elif current is not None:
                    conn.execute(
                        sa.update(alert_instances)
                        .where(alert_instances.c.id == current.id)
                        .values(
                            status="resolved",
                            resolved_at=now,
                            resolved_by=f"run {facts.run_id}",
                            resolved_run_id=facts.run_id,
                            next_escalation_at=None,
                            active_fingerprint=None,
                        )
                    )
                    resolved.append(as_dict(current))
        plans = self._plan("alert", [i for i in opened if i["status"] == "open"], facts.run_id, now)
        plans += self._plan_suppressed("alert", [i for i in opened if i["status"] == "suppressed"], now)
        plans += self._plan_resolved(resolved, f"run {facts.run_id} ({facts.status})", facts.run_id, now)
        return self._dispatch(plans, now)

    # ------------------------------------------------------------ streams

    def process_stream(
        self, pipeline: str, run_id: str, firings: Sequence[Mapping[str, Any]], now: datetime
    ) -> tuple[dict[int, int], list[Delivery]]:
        """Open one instance per rule and key of a stream processor's firings (outbox rows of
        headwater/streams/alerts.py: id, step, rule, severity, key_text, fired, details); a key
        whose instance is still active re-fires it without a message. Returns each outbox row's
        instance id, and the deliveries. Channels: the firing's (its alert step's), else the
        severity's."""
        opened: list[dict[str, Any]] = []
        placed: dict[int, int] = {}
        silences = self.silences(now)
        with self.writer.begin() as conn:
            for firing in firings:
                fp = hashlib.sha256(
                    f"stream\x00{pipeline}\x00{firing['rule']}\x00{firing['key_text']}".encode()
                ).hexdigest()
                details = {
                    "fired": [firing["fired"]],
                    "run": {"run_id": run_id, "status": "streaming"},
                    "stream": {**firing["details"], "step": firing["step"]},
                    "channels": firing["details"].get("channels") or [],
                }
                current = conn.execute(
                    sa.select(alert_instances).where(
                        alert_instances.c.fingerprint == fp, alert_instances.c.status.in_(ACTIVE)
                    )
                ).first()
                if current is not None:
                    told = bool((current.details or {}).get("told"))
                    counted = list((current.details or {}).get("firings") or [])
                    placed[int(firing["id"])] = int(current.id)
                    if int(firing["id"]) in counted:  # counted before a crash: only the telling may be due
                        if not told and all(o["id"] != current.id for o in opened):
                            opened.append(as_dict(current))
                        continue
                    details["told"] = told
                    details["firings"] = [*counted, int(firing["id"])][-FIRINGS_KEPT:]
                    conn.execute(
                        sa.update(alert_instances)
                        .where(alert_instances.c.id == current.id)
                        .values(
                            last_seen_at=now,
                            last_run_id=run_id,
                            occurrences=current.occurrences + 1,
                            details=details,
                        )
                    )
                    placed[int(firing["id"])] = int(current.id)
                    if not told and all(o["id"] != current.id for o in opened):
                        # opened by a processor that died before telling anyone: tell now
                        opened.append({**as_dict(current), "details": details})
                    continue
                values = {
                    "fingerprint": fp,
                    "active_fingerprint": fp,
                    "rule_name": firing["rule"],
                    "pipeline_name": pipeline,
                    "severity": firing["severity"],
                    "condition_key": f"stream:{firing['step']}:{firing['key_text']}",
                    "details": {**details, "told": False, "firings": [int(firing["id"])]},
                    "first_run_id": run_id,
                    "last_run_id": run_id,
                    "occurrences": 1,
                    "level": 0,
                    "opened_at": now,
                    "last_seen_at": now,
                    "next_escalation_at": None,
                }
                values["status"] = "suppressed" if any(s.covers(values) for s in silences) else "open"
                new_id = int(conn.execute(sa.insert(alert_instances).values(values)).inserted_primary_key[0])  # type: ignore[index]
                opened.append({**values, "id": new_id})
                placed[int(firing["id"])] = new_id
        plans = self._plan("alert", [i for i in opened if i["status"] == "open"], run_id, now)
        plans += self._plan_suppressed("alert", [i for i in opened if i["status"] == "suppressed"], now)
        out, failures = self._dispatch_all(plans, now)
        if failures:
            log.error("%s: %d stream alert message(s) failed; recorded", pipeline, len(failures))
        if opened:  # recorded (sent, held, failed or suppressed): a later firing does not tell again
            with self.writer.begin() as conn:
                for inst in opened:
                    conn.execute(
                        sa.update(alert_instances)
                        .where(alert_instances.c.id == inst["id"])
                        .values(details={**inst["details"], "told": True})
                    )
        return placed, out

    def resolve_quiet_stream(
        self, pipeline: str, steps: Mapping[str, float], run_id: str, now: datetime
    ) -> list[Delivery]:
        """Resolve the active stream instances of `pipeline` whose alert step (name -> clear_after
        seconds) has not fired them for clear_after; tell the channels that were told."""
        resolved: list[dict[str, Any]] = []
        with self.writer.begin() as conn:
            rows = conn.execute(
                sa.select(alert_instances).where(
                    alert_instances.c.pipeline_name == pipeline,
                    alert_instances.c.status.in_(ACTIVE),
                    alert_instances.c.condition_key.like("stream:%"),
                )
            ).all()
            for row in rows:
                step = row.condition_key.split(":", 2)[1]
                quiet = steps.get(step)
                if quiet is None or aware(row.last_seen_at) > now - timedelta(seconds=quiet):
                    continue
                conn.execute(
                    sa.update(alert_instances)
                    .where(alert_instances.c.id == row.id)
                    .values(
                        status="resolved",
                        resolved_at=now,
                        resolved_by=f"quiet for {quiet:g} s",
                        resolved_run_id=run_id,
                        active_fingerprint=None,
                        next_escalation_at=None,
                    )
                )
                resolved.append(as_dict(row))
        plans = self._plan_resolved(resolved, "the stream (no firing since)", run_id, now)
        out, failures = self._dispatch_all(plans, now)
        if failures:
            log.error("%s: %d resolution message(s) failed; recorded", pipeline, len(failures))
        return out

    # ------------------------------------------------------------ people

    def ack(self, instance_id: int, by: str, now: datetime) -> None:
        """Acknowledge: escalation stops. Acknowledging twice is a no-op."""
        with self.writer.begin() as conn:
            inst = self._get(conn, instance_id)
            if inst["status"] in ("open", "suppressed"):
                conn.execute(
                    sa.update(alert_instances)
                    .where(alert_instances.c.id == instance_id)
                    .values(
                        status="acknowledged",
                        acknowledged_at=now,
                        acknowledged_by=by,
                        next_escalation_at=None,
                    )
                )

    def resolve(self, instance_id: int, by: str, now: datetime) -> list[Delivery]:
        """Resolve by hand; the channels that were told get a "resolved" message."""
        with self.writer.begin() as conn:
            inst = self._get(conn, instance_id)
            if inst["status"] not in ACTIVE:
                return []
            conn.execute(
                sa.update(alert_instances)
                .where(alert_instances.c.id == instance_id)
                .values(
                    status="resolved",
                    resolved_at=now,
                    resolved_by=by,
                    next_escalation_at=None,
                    active_fingerprint=None,
                )
            )
        return self._dispatch(self._plan_resolved([inst], by, None, now), now)

    def silence(
        self, matchers: Mapping[str, str], until: datetime, by: str, now: datetime, reason: str = ""
    ) -> Silence:
        """Hold back messages of instances whose pipeline/rule/severity match (globs) until `until`."""
        unknown = sorted(set(matchers) - set(MATCHER_KEYS))
        if unknown or not matchers:
            raise PermanentError(
                f"silence matchers {unknown or '(none)'} are not valid", hint=f"use {', '.join(MATCHER_KEYS)}"
            )
        if until <= now:
            raise PermanentError("a silence must end in the future", hint="give an `until` after now")
        with self.writer.begin() as conn:
            new_id = conn.execute(
                sa.insert(alert_silences).values(
                    matchers=dict(matchers), reason=reason, created_by=by, created_at=now, expires_at=until
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Silence(int(new_id), dict(matchers), reason, by, now, until)

    def unsilence(self, silence_id: int, now: datetime) -> None:
        with self.writer.begin() as conn:
            conn.execute(
                sa.update(alert_silences).where(alert_silences.c.id == silence_id).values(ended_at=now)
            )

    def silences(self, now: datetime) -> list[Silence]:
        return active_silences(self.engine, now)

    # ------------------------------------------------------------ time

    def tick(self, now: datetime) -> list[Delivery]:
        """Expire silences (their suppressed instances open and are sent), escalate unacknowledged
        instances, and send messages held by quiet hours or maintenance that may go out now."""
        silences = self.silences(now)
        released: list[dict[str, Any]] = []
        escalated: list[dict[str, Any]] = []
        held_back: list[dict[str, Any]] = []
        with self.writer.begin() as conn:
            conn.execute(
                sa.update(alert_silences)
                .where(alert_silences.c.ended_at.is_(None), alert_silences.c.expires_at <= now)
                .values(ended_at=now)
            )
            for row in conn.execute(
                sa.select(alert_instances).where(alert_instances.c.status == "suppressed")
            ):
                inst = as_dict(row)
                if any(s.covers(inst) for s in silences):
                    continue
                every = self._every(inst["rule_name"])
                nxt = now + every if every else None
                conn.execute(
                    sa.update(alert_instances)
                    .where(alert_instances.c.id == inst["id"])
                    .values(status="open", next_escalation_at=nxt)
                )
                released.append({**inst, "status": "open", "next_escalation_at": nxt})
            due = conn.execute(
                sa.select(alert_instances).where(
                    alert_instances.c.status == "open", alert_instances.c.next_escalation_at <= now
                )
            ).all()
            for row in due:
                inst = as_dict(row)
                every = self._every(inst["rule_name"])
                levels = self._levels_of(inst)
                level = min(inst["level"] + 1, len(levels) - 1)
                nxt = inst["next_escalation_at"] + every if every else None
                if nxt is not None and nxt <= now:
                    nxt = now + every  # type: ignore[operator]
                conn.execute(
                    sa.update(alert_instances)
                    .where(alert_instances.c.id == inst["id"])
                    .values(level=level, next_escalation_at=nxt)
                )
                target = escalated if not any(s.covers(inst) for s in silences) else held_back
                target.append({**inst, "level": level, "next_escalation_at": nxt})
        plans = self._plan("alert", released, None, now)
        plans += self._plan("escalation", escalated, None, now)
        plans += self._plan_suppressed("escalation", held_back, now)
        released_out, failures = self._release_held(now)
        sent_out, more = self._dispatch_all(plans, now)
        raise_failures(failures + more)
        return released_out + sent_out

    # ------------------------------------------------------------ reading

    def history(
        self, pipeline: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Alert instances, newest first."""
        return history(self.engine, pipeline, since, until)

    def mtta_mttr(
        self, pipeline: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> MttaMttr:
        return mtta_mttr(self.history(pipeline, since, until))

    def deliveries(self, instance_id: int | None = None) -> list[Delivery]:
        return deliveries(self.engine, instance_id)

    # ------------------------------------------------------------ internals

    def _get(self, conn: sa.Connection, instance_id: int) -> dict[str, Any]:
        row = conn.execute(sa.select(alert_instances).where(alert_instances.c.id == instance_id)).first()
        if row is None:
            raise PermanentError(f"there is no alert {instance_id}", hint="list alerts with their ids first")
        return as_dict(row)

    def _plan(
        self, kind: str, instances: Sequence[dict[str, Any]], run_id: str | None, now: datetime
    ) -> list[dict[str, Any]]:
        """One message per channel (and pipeline) with every instance that goes to it."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for inst in instances:
            levels = self._levels_of(inst)
            for channel in levels[min(inst["level"], len(levels) - 1)]:
                groups[(channel, inst["pipeline_name"])].append(inst)
        plans = []
        for (channel, _), group in groups.items():
            title, body = alert_message(kind, group, self.secrets)
            plans.append(
                new_plan(kind, channel, group, title, body, run_id or group[0]["details"]["run"]["run_id"])
            )
        return plans

    def _plan_suppressed(
        self, kind: str, instances: Sequence[dict[str, Any]], now: datetime
    ) -> list[dict[str, Any]]:
        plans = self._plan(kind, instances, None, now)
        for plan in plans:
            plan["status"], plan["reason"] = "suppressed", "silenced"
        return plans

    def _plan_resolved(
        self, instances: Sequence[dict[str, Any]], by: str, run_id: str | None, now: datetime
    ) -> list[dict[str, Any]]:
        """Tell the channels that were told (every level reached); suppressed ones stay recorded only."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        quiet: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for inst in instances:
            levels = self._levels_of(inst)
            target = quiet if inst["status"] == "suppressed" else groups
            for channel in dict.fromkeys(c for lvl in levels[: inst["level"] + 1] for c in lvl):
                target[(channel, inst["pipeline_name"])].append(inst)
        plans = []
        for source, status in ((groups, None), (quiet, "suppressed")):
            for (channel, _), group in source.items():
                title, body = resolved_message(group, now, by, self.secrets)
                plan = new_plan("resolved", channel, group, title, body, run_id)
                if status:
                    plan["status"], plan["reason"] = status, "silenced"
                plans.append(plan)
        return plans

    def _dispatch(self, plans: Sequence[dict[str, Any]], now: datetime) -> list[Delivery]:
        out, failures = self._dispatch_all(plans, now)
        raise_failures(failures)
        return out

    def _dispatch_all(
        self, plans: Sequence[dict[str, Any]], now: datetime
    ) -> tuple[list[Delivery], list[DeliveryFailed]]:
        """Hold, send or record each planned message; raise after recording if any was refused."""
        failures: list[DeliveryFailed] = []
        out = []
        for plan in plans:
            plan["created_at"] = now
            if plan.get("status") is None:
                reason = self.channels.channels[plan["channel"]].held_reason(now)
                if reason:
                    plan["status"], plan["reason"] = "held", reason
                else:
                    failure = self._send(plan, now)
                    if failure:
                        failures.append(failure)
            with self.writer.begin() as conn:
                plan["id"] = conn.execute(sa.insert(alert_deliveries).values(plan)).inserted_primary_key[0]  # type: ignore[index]
            out.append(as_delivery(plan))
        return out, failures

    def _send(self, plan: dict[str, Any], now: datetime) -> DeliveryFailed | None:
        """Send through the channel's circuit breaker: while it is open the message is not tried
        but recorded `skipped` (not retried on later ticks); a message that fails on every attempt
        counts towards opening it; after it, one message probes the channel."""
        channel = self.channels.channels[plan["channel"]]
        settings = self.channels.delivery.breaker
        permit = None
        if settings.enabled:
            policy = BreakerPolicy(
                settings.failures, settings.window_minutes * 60, settings.open_minutes * 60, 1
            )
            try:
                permit = self.breakers.acquire(f"channel:{plan['channel']}", policy, now, kind="channel")
            except CircuitOpen as exc:
                plan.update(status="skipped", attempts=0, error=None, reason=exc.reason)
                log.warning("alert message to %s skipped: %s", plan["channel"], exc.reason)
                return None
        try:
            result = self.deliver.send(plan["channel"], channel.url, plan["title"], plan["body"])
        except DeliveryFailed as exc:
            plan.update(status="failed", attempts=exc.attempts, error=exc.detail)
            log.error("alert message to %s failed: %s", plan["channel"], exc.detail)
            if permit is not None:
                self.breakers.failed(permit, exc.detail, now)
            return exc
        except BaseException:
            if permit is not None:
                self.breakers.released(permit, now)
            raise
        if permit is not None:
            self.breakers.succeeded(permit, now)
        plan.update(status="sent", attempts=result.attempts, sent_at=now, error=None)
        return None

    def _release_held(self, now: datetime) -> tuple[list[Delivery], list[DeliveryFailed]]:
        """Send held messages whose channel is open again; a held alert whose instances all closed,
        or a held "resolved" for which the channel never got the alert, is superseded instead."""
        with self.engine.connect() as conn:
            held = [
                as_dict(r)
                for r in conn.execute(sa.select(alert_deliveries).where(alert_deliveries.c.status == "held"))
            ]
            active = {
                r.id
                for r in conn.execute(
                    sa.select(alert_instances.c.id).where(alert_instances.c.status.in_(ACTIVE))
                )
            }
            sent = conn.execute(
                sa.select(alert_deliveries.c.channel, alert_deliveries.c.instance_ids).where(
                    alert_deliveries.c.status == "sent", alert_deliveries.c.kind != "resolved"
                )
            ).all()
        told = {(c, i) for c, ids in sent for i in ids}
        failures: list[DeliveryFailed] = []
        out = []
        for plan in sorted(held, key=lambda p: p["id"]):
            if self.channels.channels[plan["channel"]].held_reason(now):
                continue
            ids = plan["instance_ids"]
            relevant = (
                any((plan["channel"], i) in told for i in ids)
                if plan["kind"] == "resolved"
                else bool(active & set(ids))
            )
            if not relevant:
                plan.update(status="superseded", reason=f"{plan['reason']}; no longer relevant when it ended")
            elif failure := self._send(plan, now):
                failures.append(failure)
            else:
                told |= {(plan["channel"], i) for i in ids}
            with self.writer.begin() as conn:
                conn.execute(
                    sa.update(alert_deliveries)
                    .where(alert_deliveries.c.id == plan["id"])
                    .values({k: plan[k] for k in ("status", "reason", "attempts", "error", "sent_at")})
                )
            out.append(as_delivery(plan))
        return out, failures


# ------------------------------------------------------------ reads that need no channels or rules


def engine_for(store_engine: sa.Engine, alerts_dir: str | Path) -> AlertEngine:
    """The alert engine over an alerts folder's channels and rules (HEADWATER_ALERTS)."""
    return AlertEngine(store_engine, *load_folder(alerts_dir))


def history(
    engine: sa.Engine,
    pipeline: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    statuses: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Alert instances, newest first."""
    query = sa.select(alert_instances).order_by(
        alert_instances.c.opened_at.desc(), alert_instances.c.id.desc()
    )
    if pipeline is not None:
        query = query.where(alert_instances.c.pipeline_name == pipeline)
    if since is not None:
        query = query.where(alert_instances.c.opened_at >= since)
    if until is not None:
        query = query.where(alert_instances.c.opened_at < until)
    if statuses:
        query = query.where(alert_instances.c.status.in_(statuses))
    with engine.connect() as conn:
        return [as_dict(r) for r in conn.execute(query)]


def mtta_mttr(rows: Sequence[Mapping[str, Any]]) -> MttaMttr:
    """Over alert instances as `history` gives them."""
    acks = [(r["acknowledged_at"] - r["opened_at"]).total_seconds() for r in rows if r["acknowledged_at"]]
    fixes = [(r["resolved_at"] - r["opened_at"]).total_seconds() for r in rows if r["resolved_at"]]
    return MttaMttr(
        sum(acks) / len(acks) if acks else None,
        sum(fixes) / len(fixes) if fixes else None,
        len(acks),
        len(fixes),
    )


def deliveries(engine: sa.Engine, instance_id: int | None = None) -> list[Delivery]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(alert_deliveries).order_by(alert_deliveries.c.id)).all()
    out = [as_delivery(r) for r in rows]
    return [d for d in out if instance_id is None or instance_id in d.instance_ids]


def active_silences(engine: sa.Engine, now: datetime) -> list[Silence]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(alert_silences).where(
                alert_silences.c.ended_at.is_(None), alert_silences.c.expires_at > now
            )
        ).all()
    return [
        Silence(r.id, r.matchers, r.reason, r.created_by, aware(r.created_at), aware(r.expires_at))  # type: ignore[arg-type]
        for r in rows
    ]
