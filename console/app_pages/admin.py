"""Administration (system_admin only): users and roles, console settings, the audit log."""

from __future__ import annotations

import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.access import Action, Role
from headwater.connections import display_url

st.title("Administration")
if not c.can(Action.MANAGE_USERS):  # the router shows this page to admins only; this is the second lock
    st.error("This page is for system admins.")
    st.stop()
token = st.session_state["hw_token"]
ROLES = [r.value for r in Role]

section = st.radio(
    "Section",
    ["Users", "Settings", "Audit log"],
    horizontal=True,
    key="admin_section",
    label_visibility="collapsed",
)

if section == "Users":
    people = data.users()
    c.table(
        pl.DataFrame(
            [
                {
                    "user": u["username"],
                    "role": u["role"],
                    "active": u["is_active"],
                    "last sign-in (UTC)": u["last_login_at"],
                    "locked until (UTC)": u["locked_until"],
                    "created (UTC)": u["created_at"],
                }
                for u in people
            ]
        ),
        hide_index=True,
        width="stretch",
        key="users_table",
    )
    left, right = st.columns(2)
    with left, st.form("add_user", clear_on_submit=True):
        st.markdown("**Add a user**")
        name = st.text_input("User name", key="new_user")
        role = st.selectbox("Role", ROLES, key="new_role")
        password = st.text_input("Password (10+ characters)", type="password", key="new_password")
        if st.form_submit_button("Add", key="add_user_submit"):
            c.act(
                lambda: data.actions().add_user(token, name.strip().lower(), role, password),
                lambda _: f"{name} added as {role}",
            )
    with right:
        st.markdown("**Change a user**")
        # outside the form: choosing a user reruns the page, so the form starts from their role
        names = [u["username"] for u in people]
        who = st.selectbox("User", names, key="change_user")
        current_role = next(u["role"] for u in people if u["username"] == who)
        if st.session_state.get("change_role_of") != who:
            st.session_state["change_role"] = current_role
            st.session_state["change_role_of"] = who
    with right, st.form("change_user"):
        new_role = st.selectbox("Role", ROLES, key="change_role", help=f"{who} is {current_role} now")
        new_password = st.text_input(
            "New password (leave empty to keep)", type="password", key="change_password"
        )
        b1, b2, b3 = st.columns(3)
        set_role = b1.form_submit_button("Set role", key="set_role_submit")
        reset = b2.form_submit_button("Set password", key="set_password_submit")
        toggle = b3.form_submit_button("Enable / disable", key="toggle_user_submit")
    if set_role:
        c.act(lambda: data.actions().set_role(token, who, new_role), lambda _: f"{who} is now {new_role}")
    if reset:
        c.act(
            lambda: data.actions().reset_password(token, who, new_password),
            lambda _: f"password of {who} changed",
        )
    if toggle:
        active = next(u["is_active"] for u in people if u["username"] == who)
        c.act(
            lambda: data.actions().set_active(token, who, not active),
            lambda _: f"{who} {'disabled' if active else 'enabled'}",
        )

elif section == "Settings":
    rows = data.console_settings()
    c.table(pl.DataFrame(rows), hide_index=True, width="stretch", key="settings_table")
    with st.form("change_setting"):
        key = st.selectbox("Setting", [r["key"] for r in rows], key="setting_key")
        current = next(r["value"] for r in rows if r["key"] == key)
        value = st.number_input("Value", value=int(current), step=1, key="setting_value")
        if st.form_submit_button("Save", key="setting_submit"):
            c.act(lambda: data.actions().change_setting(token, key, int(value)), lambda v: f"{key} = {v}")
    s = data.settings()
    st.markdown("**Process settings** (from the environment of the console's process; passwords hidden)")
    c.table(
        pl.DataFrame(
            [
                {"setting": "HEADWATER_HOME", "value": str(s.home)},
                {"setting": "HEADWATER_DATABASE_URL", "value": display_url(s.database_url)},
                {"setting": "HEADWATER_WAREHOUSE_URL", "value": display_url(s.warehouse_url)},
                {"setting": "HEADWATER_PIPELINES", "value": str(s.pipelines_dir)},
                {"setting": "HEADWATER_ALERTS", "value": str(s.alerts_dir or "(unset)")},
                {
                    "setting": "HEADWATER_REDIS_URL",
                    "value": display_url(s.redis_url) if s.redis_url else "(unset)",
                },
                {"setting": "PREFECT_API_URL", "value": s.prefect_api_url or "(unset)"},
                {"setting": "HEADWATER_CONSOLE_URL", "value": s.console_url or "(unset)"},
            ]
        ),
        hide_index=True,
        width="stretch",
        key="process_settings",
    )

else:
    f1, f2, f3, f4 = st.columns(4)
    who = f1.text_input("User", key="audit_user")
    action = f2.selectbox(
        "Action", ["(any)", "login", "logout", *[a.value for a in Action]], key="audit_action"
    )
    outcome = f3.selectbox("Outcome", ["(any)", "ok", "denied", "failed"], key="audit_outcome")
    limit = f4.number_input("Show", min_value=10, max_value=5000, value=200, step=50, key="audit_limit")
    entries = data.audit(
        int(limit),
        who.strip() or None,
        None if action == "(any)" else action,
        None if outcome == "(any)" else outcome,
    )
    c.table(
        pl.DataFrame(
            [
                {
                    "at (UTC)": e["at"],
                    "user": e["username"],
                    "role": e["role"],
                    "action": e["action"],
                    "target": e["target"],
                    "outcome": e["outcome"],
                    "detail": e["detail"],
                    "source": e["source"],
                }
                for e in entries
            ],
            schema_overrides={"user": pl.String, "role": pl.String, "target": pl.String, "detail": pl.String},
        ),
        hide_index=True,
        width="stretch",
        key="audit_table",
    )
