"""Shared pieces of the pages: formatting, status badges, charts, the role gate on buttons, and
running an action with its outcome shown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import polars as pl
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
    "skipped": "gray",
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
    "degraded": ":orange[:material/warning:]",
    "unknown": ":gray[:material/help:]",
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


def run_link(run_id: str | None) -> None:
    """A link to the run page of a run just started (it shows "starting…" until it is recorded)."""
    if run_id:
        st.page_link(
            "app_pages/run.py",
            label=f"Open run {run_id[:8]}",
            icon=":material/open_in_new:",
            query_params={"id": run_id},
        )


def pairs(value: Any) -> str:
    """A mapping (or its JSON text) as "k=v, k2=v2"; a list as "a, b"; nothing as "—"."""
    import json

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if value is None:
        return MISSING
    if isinstance(value, dict):
        return ", ".join(
            f"{k}={pairs(v) if isinstance(v, dict | list) else MISSING if v is None else v}"
            for k, v in value.items()
        )
    if isinstance(value, list):
        return ", ".join(pairs(v) if isinstance(v, dict | list) else str(v) for v in value)
    return str(value)


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


# ------------------------------------------------------------ tables

MISSING = "—"
_TYPED_CONFIG = {"number", "progress", "datetime", "date", "time", "checkbox", "link", "list"}


def readable(frame: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    """`frame` fit to show, and the columns that became text."""
    texts: set[str] = set()
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.List | pl.Array | pl.Struct):
            exprs.append(_struct_or_list(name, dtype))
            texts.add(name)
            continue
        col = pl.col(name).fill_nan(None) if dtype.is_float() else pl.col(name)
        gaps = frame.get_column(name).is_null().any() or (
            dtype.is_float() and bool(frame.get_column(name).is_nan().any())
        )
        if dtype == pl.Null or (gaps and dtype != pl.String):
            texts.add(name)
            if dtype.is_float():
                col = col.round(2)
            if isinstance(dtype, pl.Datetime):
                col = col.dt.strftime("%Y-%m-%d %H:%M:%S")
            exprs.append(col.cast(pl.String).fill_null(MISSING).alias(name))
        elif dtype == pl.String:
            exprs.append(col.fill_null(MISSING))
        else:
            exprs.append(col)
    return frame.select(exprs), texts


def _struct_or_list(name: str, dtype: pl.DataType) -> pl.Expr:
    return _text(pl.col(name), dtype).fill_null(MISSING).alias(name)


def _text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Values as text: a list "a, b", a record "k=v, k2=v2" (a missing field left out), nested alike."""
    if isinstance(dtype, pl.Struct):
        return pl.concat_str(
            [
                pl.when(expr.struct.field(f.name).is_not_null()).then(
                    pl.lit(f"{f.name}=") + _text(expr.struct.field(f.name), f.dtype)
                )
                for f in dtype.fields
            ],
            separator=", ",
            ignore_nulls=True,
        )
    if isinstance(dtype, pl.List | pl.Array):
        inner = _text(pl.element(), dtype.inner)  # type: ignore[arg-type]
        sep = " | " if isinstance(dtype.inner, pl.Struct | pl.List | pl.Array) else ", "
        return expr.list.eval(inner).list.join(sep)
    if dtype.is_float():
        return expr.fill_nan(None).round(2).cast(pl.String)
    if isinstance(dtype, pl.Datetime):
        return expr.dt.strftime("%Y-%m-%d %H:%M:%S")
    return expr.cast(pl.String)


def json_text(column: str) -> pl.Expr:
    """A JSON text column (a list or an object) as readable text: "a, b" or "k=v, k2=v2"."""
    col = pl.col(column)
    stripped = col.str.strip_chars()
    as_list = stripped.str.strip_chars("[]").str.replace_all(r'"\s*,\s*"', ", ").str.strip_chars('"')
    as_object = (
        stripped.str.strip_chars("{}")
        .str.replace_all(r'"\s*:\s*', "=")
        .str.replace_all(r',\s*"', ", ")
        .str.replace_all(r'"', "")
        .str.replace_all(r"=null\b", "=" + MISSING)
    )
    return (
        pl.when(stripped.str.starts_with("["))
        .then(as_list)
        .when(stripped.str.starts_with("{"))
        .then(as_object)
        .otherwise(col)
        .fill_null(MISSING)
        .alias(column)
    )


def table(
    frame: pl.DataFrame,
    key: str,
    *,
    default: Sequence[str] | None = None,
    column_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A table fit to read: with `default` (the columns shown at first), a choice of columns
    (key `<key>_columns`); missing values as "—", lists and records as text."""
    columns = list(frame.columns)
    if default is not None:
        chosen = st.multiselect(
            "Columns",
            columns,
            default=[c for c in default if c in columns],
            key=f"{key}_columns",
            help="Choose the columns to show",
        )
        frame = frame.select([c for c in columns if c in chosen] or columns)
    shown, texts = readable(frame)
    config = {}
    for name, cfg in (column_config or {}).items():
        if name not in shown.columns:
            continue
        kind = (cfg.get("type_config") or {}).get("type") if isinstance(cfg, dict) else None
        if name in texts and kind in _TYPED_CONFIG:  # now text: keep its label, width and help
            cfg = st.column_config.TextColumn(cfg.get("label"), width=cfg.get("width"), help=cfg.get("help"))
        config[name] = cfg
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("width", "stretch")
    return st.dataframe(shown, key=key, column_config=config or None, **kwargs)
