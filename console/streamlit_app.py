"""The Headwater console: sign-in, then the pages the user's role may see.

Served by `headwater console`; tested with AppTest.from_file("console/streamlit_app.py")."""

from __future__ import annotations

import streamlit as st

from console import auth
from headwater.access import Role

st.set_page_config(page_title="Headwater", page_icon=":material/water:", layout="wide")

who = auth.current_user()
pages = {
    "Operations": [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
        st.Page("app_pages/pipelines.py", title="Pipelines", icon=":material/account_tree:"),
        st.Page("app_pages/run.py", title="Runs", icon=":material/play_circle:", url_path="run"),
        st.Page("app_pages/sla.py", title="SLAs", icon=":material/timer:"),
        st.Page("app_pages/sync.py", title="Sync health", icon=":material/sync:"),
        st.Page("app_pages/streams.py", title="Streams", icon=":material/stream:"),
    ],
    "Data": [
        st.Page("app_pages/quality.py", title="Quality", icon=":material/verified:"),
        st.Page("app_pages/lineage.py", title="Lineage", icon=":material/hub:"),
        st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications:"),
    ],
}
if who is not None and who.role == Role.SYSTEM_ADMIN:
    pages["Administration"] = [
        st.Page("app_pages/admin.py", title="Admin", icon=":material/admin_panel_settings:")
    ]

# signed out, the pages are registered but hidden: the address (e.g. a /run?id=... link from an
# alert) is kept, and after signing in that page opens
page = st.navigation(pages, position="sidebar" if who else "hidden")
if who is None:
    auth.login_form()
    st.stop()
with st.sidebar:
    st.markdown(f"**{who.username}**  \n`{who.role}`")
    left, right = st.columns(2)
    if left.button("Refresh", key="refresh", icon=":material/refresh:", help="Read the store again now"):
        st.cache_data.clear()
        st.rerun()
    if right.button("Sign out", key="sign_out", icon=":material/logout:"):
        auth.sign_out()
        st.rerun()
page.run()
