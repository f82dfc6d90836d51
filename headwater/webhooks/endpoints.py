"""Which endpoints accept posts: those a spec in the pipelines folder declares as a `webhook`
source. The folder is read again when a spec file changes (checked at most every few seconds), so
adding a spec opens its endpoint without restarting the API."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from headwater.errors import PermanentError, SpecError
from headwater.spec.loader import SpecYamlLoader, load_pipeline, spec_files
from headwater.spec.models import WebhookSignature, WebhookSource

log = logging.getLogger(__name__)
RECHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    signature: WebhookSignature
    max_body_bytes: int
    declared_by: tuple[str, ...]
    """`pipeline.source` of each source that reads the endpoint."""


class EndpointConflict(PermanentError):
    """Two sources read one endpoint but disagree on its secret or size limit."""

    def __init__(self, name: str, declared_by: list[str]) -> None:
        self.name, self.declared_by = name, declared_by
        super().__init__(
            f"webhook endpoint {name!r} is declared differently by {', '.join(declared_by)} "
            "(signature or max_body_bytes differ)",
            hint="give every source of one endpoint the same signature and max_body_bytes, "
            "or give each its own endpoint",
        )


def _declares_webhook(path: Path) -> bool:
    """Whether the YAML alone shows a webhook source (cheap; no environment, no checks)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SpecYamlLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    sources = data.get("sources") if isinstance(data, dict) else None
    return isinstance(sources, dict) and any(
        isinstance(s, dict) and s.get("kind") == "webhook" for s in sources.values()
    )


class EndpointDirectory:
    """The endpoints the specs of one folder declare, kept while the folder's files do not change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._checked = 0.0
        self._sources: dict[str, list[tuple[str, WebhookSource]]] = {}

    def _current_fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        for path in spec_files(self.directory) if self.directory.exists() else []:
            try:
                stat = path.stat()
            except OSError:
                continue
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(out)

    def _reload(self) -> None:
        found: dict[str, list[tuple[str, WebhookSource]]] = {}
        for path in spec_files(self.directory) if self.directory.exists() else []:
            if not _declares_webhook(path):
                continue
            try:
                loaded = load_pipeline(path, check=False, secrets_may_be_unset=True, params_may_be_unset=True)
            except SpecError as exc:
                log.warning("webhook endpoints: %s is not a valid spec, skipped: %s", path, exc)
                continue
            for name, source in loaded.spec.sources.items():
                if isinstance(source, WebhookSource):
                    found.setdefault(source.endpoint, []).append((f"{loaded.spec.name}.{name}", source))
        self._sources = found

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._checked < RECHECK_SECONDS and self._fingerprint is not None:
                return
            fingerprint = self._current_fingerprint()
            if fingerprint != self._fingerprint:
                self._reload()
                self._fingerprint = fingerprint
            self._checked = time.monotonic()

    def names(self) -> list[str]:
        self._refresh()
        return sorted(self._sources)

    def find(self, name: str) -> Endpoint | None:
        """The endpoint `name`, or None when no spec declares it; EndpointConflict when the
        sources that declare it disagree."""
        self._refresh()
        declared = self._sources.get(name)
        if not declared:
            return None
        first = declared[0][1]
        if any(
            (s.signature, s.max_body_bytes) != (first.signature, first.max_body_bytes) for _, s in declared
        ):
            raise EndpointConflict(name, [who for who, _ in declared])
        return Endpoint(name, first.signature, first.max_body_bytes, tuple(who for who, _ in declared))
