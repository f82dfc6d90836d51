"""Shared pieces of the pages: formatting, status badges, charts, the role gate on buttons, and
running an action with its outcome shown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import streamlit as st

from headwater.access import AccessDenied, Action, Principal, allowed
from headwater.access.roles import roles_allowed
from headwater.errors import HeadwaterError

T = TypeVar("T")
USER = "hw_user"

STATUS_COLOR = {
    "completed": "#2e9e5b",
    "completed_with_warnings": "#d4a72c",
    "running": "#3a7bd5",
    "failed": "#d64545",
    "crashed": "#8e44ad",
    "pending": "#9aa5b1",
    "skipped": "#9aa5b1",
    "retrying": "#e67e22",
}
# Streamlit markdown colours and Material icons (bundled with Streamlit: no emoji font needed)
_BADGE = {
    "completed": "green",
    "completed_with_warnings": "orange",
    "running": "blue",
    "failed": "red",
    "crashed": "violet",
    "retrying": "orange",
    "critical": "red",
    "error": "red",
    "warning": "orange",
    "info": "blue",
    "high": "red",
    "medium": "orange",
    "low": "blue",
}
HEALTH_ICON = {
    "ok": ":green[:material/check_circle:]",
    "down": ":red[:material/error:]",
    "not_configured": ":gray[:material/do_not_disturb_on:]",
}


def badge(value: str | None) -> str:
    """A coloured markdown badge for a status, severity or priority."""
    if not value:
        return "—"
    return f":{_BADGE.get(value, 'gray')}-badge[{value}]"


def who() -> Principal:
    """The signed-in user (the router has checked the session this run)."""
    return st.session_state[USER]  # type: ignore[no-any-return]


def can(action: Action) -> bool:
    return allowed(who().role, action)


def needs(action: Action) -> str:
    """Help text on a button the user's role does not allow."""
    return f"Needs the role {' or '.join(roles_allowed(action))}; you are {who().role}."


def gate(action: Action) -> dict[str, Any]:
    """Button options for an action: a lock and the reason when the role does not allow it. The
    button stays clickable: the domain refuses the action and the refusal is audited (a disabled
    widget's click would be dropped by Streamlit before anything could record the attempt)."""
    if can(action):
        return {}
    return {"icon": ":material/lock:", "help": needs(action)}


def act(work: Callable[[], T], done: Callable[[T], str]) -> T | None:
    """Run an action; show what happened. The domain checks the role and audits either way."""
    from console import data

    try:
        result = work()
    except AccessDenied as exc:
        st.error(f"Not allowed: {exc}", icon=":material/block:")
        return None
    except HeadwaterError as exc:
        st.error(str(exc), icon=":material/warning:")
        return None
    data.refresh()
    st.success(done(result), icon=":material/check_circle:")
    return result


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def number(value: Any) -> str:
    return "—" if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    delta = (now - aware).total_seconds()
    future = delta < 0
    delta = abs(delta)
    if delta < 90:
        text = f"{delta:.0f} s"
    elif delta < 5400:
        text = f"{delta / 60:.0f} min"
    elif delta < 172800:
        text = f"{delta / 3600:.0f} h"
    else:
        text = f"{delta / 86400:.0f} days"
    return f"in {text}" if future else f"{text} ago"


def plotly(fig: Any, key: str, **kwargs: Any) -> Any:
    """A Plotly chart in the house look, full width."""
    fig.update_layout(
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        font={"size": 12},
    )
    return st.plotly_chart(fig, key=key, width="stretch", **kwargs)


def day_axis(fig: Any, days: int) -> None:
    """A date axis spanning the whole window, one tick label per day or so (a single day of data
    would otherwise zoom the axis to milliseconds)."""
    from datetime import timedelta

    today = datetime.now(UTC).date()
    fig.update_xaxes(
        type="date",
        range=[today - timedelta(days=days), today + timedelta(days=1)],
        tickformat="%b %d",
        title=None,
    )


def empty(message: str) -> None:
    st.info(message, icon=":material/info:")
