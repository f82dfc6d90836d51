"""The one settings object for process configuration, read from the environment when asked."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where Headwater keeps its state.

    Every field comes from an environment variable; nothing is read at import time.
    """

    home: Path
    """HEADWATER_HOME: the folder for the embedded SQLite store and warehouse (default ~/.headwater)."""
    database_url: str
    """HEADWATER_DATABASE_URL: the metadata store (default sqlite under HEADWATER_HOME)."""
    warehouse_url: str
    """HEADWATER_WAREHOUSE_URL: the default warehouse for specs that name none (default sqlite)."""
    pipelines_dir: Path
    """HEADWATER_PIPELINES: the folder of pipeline specs (default ./pipelines)."""
    alerts_dir: Path | None = None
    """HEADWATER_ALERTS: the folder with channels.yaml and rules.yaml; unset, no alerts are sent."""
    console_url: str | None = None
    """HEADWATER_CONSOLE_URL: where the console is served, for links in alerts."""
    redis_url: str | None = None
    """HEADWATER_REDIS_URL: the Redis that carries stream events (unset: streams are off)."""
    prefect_api_url: str | None = None
    """PREFECT_API_URL: the Prefect server runs report to (unset: a temporary API per process)."""
    stream_min_bytes: int = 256 * 2**20
    """HEADWATER_STREAM_MIN_MB: file sources at least this large (default 256 MB) stream to their load
    when nothing between needs the whole frame (see headwater.pipeline.streaming)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("HEADWATER_HOME") or Path.home() / ".headwater").expanduser().resolve()
        return cls(
            home=home,
            database_url=env.get("HEADWATER_DATABASE_URL") or f"sqlite:///{home / 'headwater.db'}",
            warehouse_url=env.get("HEADWATER_WAREHOUSE_URL") or f"sqlite:///{home / 'warehouse.db'}",
            pipelines_dir=Path(env.get("HEADWATER_PIPELINES") or "pipelines").expanduser().resolve(),
            alerts_dir=Path(env["HEADWATER_ALERTS"]).expanduser().resolve()
            if env.get("HEADWATER_ALERTS")
            else None,
            console_url=env.get("HEADWATER_CONSOLE_URL") or None,
            redis_url=env.get("HEADWATER_REDIS_URL") or None,
            prefect_api_url=env.get("PREFECT_API_URL") or None,
            stream_min_bytes=_megabytes(env.get("HEADWATER_STREAM_MIN_MB"), 256),
        )

    def ensure_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def home_secret_files(self) -> dict[str, Path]:
        """Secrets kept for this home (mode 600, made by `headwater demo`), by environment variable."""
        return {name: self.home / "secrets" / file for name, file in HOME_SECRETS.items()}

    def use_home_secrets(self, env: MutableMapping[str, str] | None = None) -> list[str]:
        """Fill in, from the files kept for this home, the secrets the environment does not set
        (names returned): a run after `headwater demo` uses the salt the demo kept, as the demo did."""
        env = os.environ if env is None else env
        used = []
        for name, path in self.home_secret_files().items():
            if not env.get(name) and path.is_file():
                value = path.read_text().strip()
                if value:
                    env[name] = value
                    used.append(name)
        return used


HOME_SECRETS = {"HASH_SALT": "hash_salt"}
"""Environment variables `headwater demo` keeps a random value for in $HEADWATER_HOME/secrets/."""


def _megabytes(text: str | None, default: float) -> int:
    """Bytes from a number of MB in the environment (the default when unset or not a number >= 0)."""
    try:
        value = float(text) if text else default
    except ValueError:
        value = default
    return int(max(value, 0) * 2**20)
