"""Signing in and out. The session token lives in this browser session's state; every rerun asks
the store who holds it (so idle timeout, sign-out, a disabled account or a new role apply at once)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from console import data
from console.components import USER
from headwater.access import LoginFailed, Principal, SessionExpired, login, logout, principal

TOKEN = "hw_token"
NOTICE = "hw_notice"


def current_user() -> Principal | None:
    token = st.session_state.get(TOKEN)
    if not token:
        return None
    try:
        who = principal(data.engine(), token, data.now())
    except SessionExpired as exc:
        st.session_state.pop(TOKEN, None)
        st.session_state.pop(USER, None)
        st.session_state[NOTICE] = f"You were signed out: {exc}."
        return None
    st.session_state[USER] = who
    return who


def live(run_every: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """A panel that re-runs by itself every `run_every` (an `st.fragment`). Its re-runs do not keep
    the session alive, and once the session has ended the whole page re-runs to the sign-in form
    instead of the panel showing data to nobody signed in."""

    def wrap(body: Callable[[], None]) -> Callable[[], None]:
        @st.fragment(run_every=run_every)
        def panel() -> None:
            try:
                principal(data.engine(), st.session_state.get(TOKEN), data.now(), touch=False)
            except SessionExpired:
                st.rerun(scope="app")
            body()

        return panel

    return wrap


def login_form() -> None:
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title(":material/water: Headwater")
        st.caption("Operations console: pipelines, runs, data quality, lineage and alerts.")
        if notice := st.session_state.pop(NOTICE, None):
            st.info(notice)
        with st.form("login", border=True):
            username = st.text_input("User name", key="login_user", autocomplete="username")
            password = st.text_input(
                "Password", type="password", key="login_password", autocomplete="current-password"
            )
            submitted = st.form_submit_button("Sign in", type="primary", key="login_submit")
        if submitted:
            try:
                st.session_state[TOKEN] = login(data.engine(), username, password, data.now())
            except LoginFailed as exc:
                st.error(f"Could not sign in: {exc}.", icon=":material/lock:")
                return
            st.rerun()
        st.caption("No account? A system admin adds one: `headwater users add NAME --role data_analyst`.")


def sign_out() -> None:
    token = st.session_state.pop(TOKEN, None)
    st.session_state.pop(USER, None)
    if token:
        logout(data.engine(), token, data.now())
    st.session_state[NOTICE] = "You signed out."
