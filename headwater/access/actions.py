"""Every action a person takes from the console, checked against their role as the store says now
and written to the audit log: allowed and done ("ok"), allowed and failed ("failed"), or refused
("denied"). Pages call these; nothing else in the console writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from headwater.access import config, users
from headwater.access.audit import AuditEntry, record
from headwater.access.roles import Action, Role, allowed, roles_allowed
from headwater.access.sessions import Principal, SessionExpired, principal
from headwater.access.tokens import is_api_token, token_principal
from headwater.control import Orchestrator, RunTicket
from headwater.errors import PermanentError
from headwater.redact import redact
from headwater.spec.loader import mask_secrets
from headwater.store.tables import console_users, data_pipelines

if TYPE_CHECKING:
    from headwater.settings import Settings
    from headwater.streams.replay import DeadReplay

T = TypeVar("T")


class AccessDenied(PermanentError):
    """The signed-in user's role does not allow the action (or nobody is signed in)."""

    def __init__(self, action: Action, username: str | None, role: str | None, reason: str) -> None:
        self.action, self.username, self.role = action, username, role
        super().__init__(
            reason, hint=f"ask a system admin for one of the roles {', '.join(roles_allowed(action))}"
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


class Actions:
    def __init__(
        self,
        engine: sa.Engine,
        orchestrator: Orchestrator | None = None,
        alerts: Callable[[], Any] | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        source: str = "console",
        connections: Any = None,
    ) -> None:
        """`alerts` builds the AlertEngine (it needs the channel and rule config); None: not configured."""
        self.engine = engine
        self.orchestrator = orchestrator
        self.alerts = alerts
        self.clock = clock
        self.source = source
        self.connections = connections
        """Where a dry run reads incremental watermarks from (None: it does not)."""

    # ------------------------------------------------------------ the gate

    def identify(self, token: str | None) -> Principal:
        """Who holds `token`: a console session or an API token (SessionExpired: nobody)."""
        now = self.clock()
        if token is not None and is_api_token(token):
            return token_principal(self.engine, token, now)
        return principal(self.engine, token, now)

    def authorize(
        self, token: str | None, action: Action, target: str | None = None, params: Any = None
    ) -> Principal:
        """Who may do `action`, or AccessDenied after auditing the refusal."""
        try:
            who = self.identify(token)
        except SessionExpired as exc:
            self._audit(None, None, action, target, params, "denied", str(exc))
            raise AccessDenied(action, None, None, f"not signed in: {exc}") from exc
        if not allowed(who.role, action):
            reason = f"{who.username} ({who.role}) may not {action.value}"
            self._audit(who.username, who.role, action, target, params, "denied", reason)
            raise AccessDenied(action, who.username, who.role, reason)
        return who

    def _audit(
        self,
        username: str | None,
        role: str | None,
        action: Action,
        target: str | None,
        params: Any,
        outcome: str,
        detail: str | None,
    ) -> None:
        record(
            self.engine,
            AuditEntry(
                username,
                role,
                action.value,
                target,
                outcome,
                detail,
                mask_secrets(dict(params)) if isinstance(params, Mapping) else None,
                self.source,
            ),
            self.clock(),
        )

    def _do(
        self,
        token: str | None,
        action: Action,
        target: str | None,
        params: Mapping[str, Any] | None,
        work: Callable[[Principal], T],
        describe: Callable[[T], str] = lambda _: "",
    ) -> T:
        who = self.authorize(token, action, target, params)
        try:
            result = work(who)
        except Exception as exc:
            detail = redact(f"{type(exc).__name__}: {exc}")[:2000]
            self._audit(who.username, who.role, action, target, params, "failed", detail)
            raise
        self._audit(who.username, who.role, action, target, params, "ok", describe(result) or None)
        return result

    # ------------------------------------------------------------ pipelines

    def _orchestrator(self) -> Orchestrator:
        if self.orchestrator is None:
            raise PermanentError(
                "no orchestrator is configured here", hint="run the console with `headwater console`"
            )
        return self.orchestrator

    def _known(self, pipeline: str) -> None:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(data_pipelines.c.id).where(
                    data_pipelines.c.name == pipeline, data_pipelines.c.is_active
                )
            ).first()
        if not found:
            raise PermanentError(
                f"there is no pipeline {pipeline!r}", hint="choose one from the Pipelines page"
            )

    def run_pipeline(
        self,
        token: str | None,
        pipeline: str,
        params: Mapping[str, Any] | None = None,
        *,
        execution_type: str = "manual",
    ) -> RunTicket:
        """Start a run (`execution_type` manual, or retry of a run that failed)."""
        values = dict(params or {})
        audited = values if execution_type == "manual" else {**values, "execution_type": execution_type}

        def work(who: Principal) -> RunTicket:
            self._known(pipeline)
            return self._orchestrator().run(
                pipeline, values, replay=False, requested_by=who.username, execution_type=execution_type
            )

        return self._do(token, Action.RUN_PIPELINE, pipeline, audited, work, lambda t: t.detail)

    def plan_pipeline(
        self, token: str | None, pipeline: str, params: Mapping[str, Any] | None, pipelines_dir: Any
    ) -> dict[str, Any]:
        """What a run with these parameters would do (a dry run: nothing read, nothing written).
        The same permission as running it, audited as a dry run."""
        from headwater.pipeline.plan import plan

        values = dict(params or {})

        def work(_: Principal) -> dict[str, Any]:
            self._known(pipeline)
            return plan(pipelines_dir, pipeline, values, connections=self.connections)

        return self._do(
            token, Action.RUN_PIPELINE, pipeline, {**values, "dry_run": True}, work, lambda _: "dry run"
        )

    def set_paused(self, token: str | None, pipeline: str, paused: bool) -> None:
        action = Action.PAUSE_PIPELINE if paused else Action.RESUME_PIPELINE

        def work(_: Principal) -> None:
            self._known(pipeline)
            self._orchestrator().set_paused(pipeline, paused)

        self._do(token, action, pipeline, None, work)

    def replay_quarantine(self, token: str | None, pipeline: str) -> RunTicket:
        def work(who: Principal) -> RunTicket:
            self._known(pipeline)
            return self._orchestrator().run(pipeline, {}, replay=True, requested_by=who.username)

        return self._do(token, Action.REPLAY_QUARANTINE, pipeline, None, work, lambda t: t.detail)

    def replay_dead_letters(
        self, token: str | None, pipeline: str, ids: list[str], settings: Settings
    ) -> DeadReplay:
        """Replay the dead letters of the streaming spec `pipeline` whose source entry ids are `ids`
        (headwater.streams.replay.replay_dead); returns its DeadReplay."""

        def work(_: Principal) -> DeadReplay:
            from headwater.streams.replay import open_target, replay_dead

            if not ids:
                raise PermanentError("no dead letters chosen", hint="select the letters to replay")
            target = open_target(pipeline, settings)
            try:
                return replay_dead(target.plan, target.client, target.warehouse, ids=ids)
            finally:
                target.close()

        return self._do(
            token, Action.REPLAY_DEAD_LETTERS, pipeline, {"ids": ids}, work, lambda r: r.summary()
        )

    # ------------------------------------------------------------ alerts

    def _alert_engine(self) -> Any:
        if self.alerts is None:
            raise PermanentError(
                "alerting is not configured",
                hint="set HEADWATER_ALERTS to the folder with channels.yaml and rules.yaml",
            )
        return self.alerts()

    def ack_alert(self, token: str | None, alert_id: int) -> None:
        self._do(
            token,
            Action.ACK_ALERT,
            f"alert {alert_id}",
            None,
            lambda who: self._alert_engine().ack(alert_id, who.username, self.clock()),
        )

    def resolve_alert(self, token: str | None, alert_id: int) -> int:
        """How many "resolved" messages went out."""
        return self._do(
            token,
            Action.RESOLVE_ALERT,
            f"alert {alert_id}",
            None,
            lambda who: len(self._alert_engine().resolve(alert_id, who.username, self.clock())),
            lambda n: f"{n} message(s)",
        )

    def silence(self, token: str | None, matchers: Mapping[str, str], hours: float, reason: str) -> int:
        """The new silence's id."""
        params = {"matchers": dict(matchers), "hours": hours, "reason": reason}

        def work(who: Principal) -> int:
            if not 0 < hours <= 24 * 14:
                raise PermanentError(f"a silence of {hours} hours", hint="give from a minute to 14 days")
            now = self.clock()
            return int(
                self._alert_engine()
                .silence(matchers, now + timedelta(hours=hours), who.username, now, reason)
                .id
            )

        return self._do(
            token, Action.SILENCE_ALERT, ", ".join(f"{k}={v}" for k, v in matchers.items()), params, work
        )

    # ------------------------------------------------------------ users and settings

    def _keep_an_admin(self, username: str) -> None:
        """Refuse the change that would leave no active system admin."""
        with self.engine.connect() as conn:
            admins = (
                conn.execute(
                    sa.select(console_users.c.username).where(
                        console_users.c.role == Role.SYSTEM_ADMIN.value, console_users.c.is_active
                    )
                )
                .scalars()
                .all()
            )
        if admins == [username]:
            raise PermanentError(
                f"{username} is the last active system admin", hint="make another user system_admin first"
            )

    def add_user(self, token: str | None, username: str, role: str, password: str) -> None:
        self._do(
            token,
            Action.MANAGE_USERS,
            f"user {username}",
            {"op": "add", "role": role},
            lambda _: users.add_user(self.engine, username, role, password, self.clock()),
        )

    def set_role(self, token: str | None, username: str, role: str) -> None:
        def work(_: Principal) -> None:
            if role != Role.SYSTEM_ADMIN.value:
                self._keep_an_admin(username)
            users.set_role(self.engine, username, role, self.clock())

        self._do(token, Action.MANAGE_USERS, f"user {username}", {"op": "set_role", "role": role}, work)

    def set_active(self, token: str | None, username: str, active: bool) -> None:
        def work(_: Principal) -> None:
            if not active:
                self._keep_an_admin(username)
            users.set_active(self.engine, username, active, self.clock())

        op = "enable" if active else "disable"
        self._do(token, Action.MANAGE_USERS, f"user {username}", {"op": op}, work)

    def reset_password(self, token: str | None, username: str, password: str) -> None:
        self._do(
            token,
            Action.MANAGE_USERS,
            f"user {username}",
            {"op": "reset_password"},
            lambda _: users.set_password(self.engine, username, password, self.clock()),
        )

    def change_setting(self, token: str | None, key: str, value: Any) -> int:
        return self._do(
            token,
            Action.CHANGE_SETTINGS,
            f"setting {key}",
            {"value": value},
            lambda who: config.write_setting(self.engine, key, value, who.username, self.clock()),
            lambda v: f"{key} = {v}",
        )
