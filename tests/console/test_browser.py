"""The served console in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright;
no browser is downloaded): sign in, open every page from the sidebar, check its key text and that no
exception shows, and save a screenshot of each page. An analyst's "Run now" is refused on screen. The
Streams page, served over the records of a real processor run, shows the processor's figures as SQL
counts them."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from headwater.access.users import set_active
from tests.conftest import REPO
from tests.console.conftest import PASSWORD, Console, sqlite_only
from tests.streams.metrics_run import EVENTS, StreamRun, stream_run_fixture  # noqa: F401
from tests.streams.redis_keys import rds_fixture, stream_key_fixture  # noqa: F401

CHROMIUM = os.environ.get("HEADWATER_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / ".artifacts" / "screenshots"
PAGES = [
    # sidebar link, title, texts the page must show
    (
        "Overview",
        "Overview",
        ["Success (7 d)", "Quality trend (30 days)", "Metadata store", "Recent failures"],
    ),
    ("Pipelines", "Pipelines", ["carrier_monthly", "Sources", "Run now", "Recent runs: duration"]),
    ("Runs", "Runs", ["Steps", "Step timeline", "Quality checks", "Data samples"]),
    ("Sync health", "Sync health", ["Syncs", "Failing", "vendor_prices", "Run now"]),
    ("Quality", "Quality", ["Run quality score by pipeline", "Pass rate by dimension"]),
    ("Lineage", "Lineage", ["Upstream", "Downstream", "How each column is made"]),
    ("Alerts", "Alerts", ["MTTA", "Active", "on vendor_prices", "Silences", "History"]),
    ("Admin", "Administration", ["Add a user", "Change a user"]),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(console: Console, tmp_path: Path) -> Iterator[str]:
    """`headwater console` serving this test's store, until the test ends."""
    with _serving(tmp_path) as url:
        yield url


@contextlib.contextmanager
def _serving(tmp_path: Path) -> Iterator[str]:
    """`headwater console` serving the store of the environment (HEADWATER_HOME ...), until the block ends."""
    port = _free_port()
    log = (tmp_path / "console.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "console", "--port", str(port)],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError((tmp_path / "console.log").read_text())
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _settled(page: object) -> None:
    """Wait until the script run ends (the "running" indicator goes) and the page stops changing."""
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.wait_for_timeout(500)  # type: ignore[attr-defined]


def _sign_in(page: object, url: str, user: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_label("User name").fill(user)  # type: ignore[attr-defined]
    page.get_by_label("Password", exact=True).fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    _settled(page)


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/ensure-browser.sh"
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.mark.prefect
@sqlite_only  # the golden store (the Streams test below serves a processor run's store instead)
def test_every_page_in_a_browser(served: str, browser: object) -> None:
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(served)
    page.get_by_role("heading", name="Headwater").wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "00-sign-in.png"), full_page=True)
    _sign_in(page, served, "admin")
    for number, (link, title, texts) in enumerate(PAGES, start=1):
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
        page.get_by_role("heading", name=title, exact=True).wait_for(timeout=60_000)
        _settled(page)
        if page.locator(".js-plotly-plot").count():
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        body = page.inner_text("body")
        missing = [t for t in texts if t not in body]
        assert not missing, f"{title}: {missing} not on the page"
        assert page.locator('[data-testid="stException"]').count() == 0, f"{title}: {body[:2000]}"
        assert "Traceback" not in body, f"{title}: {body[:2000]}"
        page.screenshot(path=str(SHOTS / f"{number:02d}-{link.lower()}.png"), full_page=True)
        if link == "Lineage":  # the column-level graph too
            page.get_by_text("Columns", exact=True).click()
            _settled(page)
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(SHOTS / f"{number:02d}b-lineage-columns.png"), full_page=True)
    assert not errors, errors
    print(f"\nscreenshots of {len(PAGES) + 1} pages in {SHOTS}")


@pytest.mark.prefect
@sqlite_only  # the golden store (the Streams test below serves a processor run's store instead)
def test_an_analyst_is_refused_on_screen(served: str, browser: object, console: Console) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
    _sign_in(page, served, "analyst")
    nav = page.get_by_test_id("stSidebarNav")
    assert nav.get_by_role("link", name="Admin").count() == 0
    nav.get_by_role("link", name="Pipelines").click()
    page.get_by_role("heading", name="Pipelines", exact=True).wait_for(timeout=60_000)
    _settled(page)
    page.get_by_role("button", name="Run now").click()
    page.get_by_text("Not allowed: analyst (data_analyst) may not pipeline.run").wait_for(timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "08-analyst-refused.png"), full_page=True)
    with console.engine.connect() as conn:
        import sqlalchemy as sa

        denied = conn.execute(
            sa.text("SELECT username, action, outcome FROM audit_log WHERE action = 'pipeline.run'")
        ).all()
    assert [tuple(r) for r in denied] == [("analyst", "pipeline.run", "denied")]

    # the account is disabled while the overview is open: its live panels do not go on showing data;
    # within one refresh (10 s) the page falls back to the sign-in form
    nav.get_by_role("link", name="Overview").click()
    page.get_by_role("heading", name="Running now").wait_for(timeout=60_000)
    set_active(console.engine, "analyst", False, datetime.now(UTC))
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert "the account is disabled" in page.inner_text("body")


@pytest.mark.redis
def test_the_streams_page_in_a_browser_shows_the_processor_as_sql_counts_it(
    stream_run: StreamRun, rds: redis.Redis, browser: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real processor run (tests/streams/metrics_run.py: produce + `headwater stream run`) into a
    fresh store; the served Streams page shows its name and its figures equal to SQL over the store
    and the warehouse."""
    import sqlalchemy as sa

    from headwater.access.users import add_user

    run = stream_run
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    add_user(run.store, "engineer", "data_engineer", PASSWORD, datetime.now(UTC))
    (proc,) = run.sql("SELECT events_read, events_loaded, events_dead, last_id FROM stream_processors")
    with run.warehouse.connect() as conn:
        loaded = conn.execute(sa.text("SELECT count(*) FROM vitals")).scalar_one()
    assert proc.events_loaded == loaded  # the figure the page shows is the warehouse's count
    with _serving(tmp_path) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        _sign_in(page, url, "engineer")
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Streams").click()
        page.get_by_role("heading", name="Streams", exact=True).wait_for(timeout=60_000)
        _settled(page)
        body = page.inner_text("body")
        assert page.locator('[data-testid="stException"]').count() == 0, body[:2000]
        metrics = {
            m.get_by_test_id("stMetricLabel").inner_text().strip(): m.get_by_test_id("stMetricValue")
            .inner_text()
            .strip()
            for m in page.get_by_test_id("stMetric").all()
        }
        assert metrics == {"Processors": "1", "Healthy": "0", "Lagging or stalled": "0", "Failed": "0"}
        assert f"{run.name} stopped — stream {run.stream}, group vitals_stream" in body
        assert (
            f"Since it started: {proc.events_read:,} events read, {loaded:,} loaded, "
            f"{proc.events_dead:,} dead-lettered; last id {proc.last_id}"
        ) in body
        assert proc.events_read == EVENTS and proc.events_dead == run.bad
        dead = rds.xlen(f"{run.stream}:dead")
        assert f"{run.stream}:dead holds {dead} dead letter(s)" in body and dead == run.bad
        assert "Replay selected dead letters" in body
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "09-streams.png"), full_page=True)
        assert not errors, errors
