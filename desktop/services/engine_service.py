"""The remote engines the person added (Settings → Engines), off the GUI thread: their model
lists, adding one (it must answer first) and removing one. Keys go to the keyring."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from desktop.core.remote.engine_config import (
    EngineConfig,
    check_name,
    host_port,
    key_name,
    load_engines,
    normalize_base_url,
    save_engines,
)
from desktop.core.system.paths import AppPaths
from desktop.services.background import Worker

if TYPE_CHECKING:
    from desktop.core.remote.remote_models import EngineListing

logger = logging.getLogger(__name__)


class EngineService(QObject):
    """Signals:
        listed(list listings): every engine's EngineListing (its models, or why they could not be read).
        models_changed(list entries): the RemoteEntry items of every engine that answered.
        add_failed(str message): an engine could not be added; the message is for a person.
        added(str name): an engine was added.
    """

    listed = Signal(list)
    models_changed = Signal(list)
    add_failed = Signal(str)
    added = Signal(str)

    def __init__(self, paths: AppPaths, secrets: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._paths, self._secrets = paths, secrets
        self.listings: list[EngineListing] = []
        self._worker = Worker("cove-engines", self._on_failed, self)

    def refresh(self) -> None:
        """Read every engine's model list again."""
        self._worker.submit(self._list_all, self._on_listed)

    def add(self, name: str, url: str, api_key: str = "", ca_file: str = "") -> None:
        """Add an engine once it answered its model list (``added`` or ``add_failed`` tells)."""
        self._worker.submit(lambda: self._add(name, url, api_key.strip(), ca_file.strip()), self._on_added)

    def remove(self, name: str) -> None:
        """Forget an engine and its key."""
        self._worker.submit(lambda: self._remove(name), lambda _r: self.refresh())

    def stop(self, timeout: float = 2.0) -> None:
        """End the worker thread (bounded wait)."""
        self._worker.stop(timeout)

    # -- on the worker thread ---------------------------------------------------------------
    def _list_all(self) -> list[EngineListing]:
        from desktop.core.remote.remote_models import list_all  # lazy: the client, only once engines are used

        return list_all(self._paths, self._secrets)

    def _add(self, name: str, url: str, api_key: str, ca_file: str) -> tuple[str, str]:
        try:
            name, url = check_name(name), normalize_base_url(url)
        except ValueError as exc:
            return "", str(exc)
        engines = load_engines(self._paths)
        if any(e.name == name for e in engines):
            return "", f"There is already an engine called '{name}': remove it first, or choose another name."
        from desktop.core.remote.remote_models import list_engine  # lazy, as in _list_all

        config = EngineConfig(name, url, ca_file, bool(api_key))
        listing = list_engine(config, api_key or None)
        if listing.error:
            return "", listing.error
        if api_key and not self._secrets.set(key_name(name), api_key):
            logger.warning("the API key of engine %s is kept for this session only (no keyring)", name)
        save_engines(self._paths, [*engines, config])
        logger.info("engine %s added (%s, %d models)", name, url, len(listing.models))
        return name, ""

    def _remove(self, name: str) -> None:
        engines = load_engines(self._paths)
        save_engines(self._paths, [e for e in engines if e.name != name])
        self._secrets.delete(key_name(name))

    # -- on the GUI thread ------------------------------------------------------------------
    def _on_listed(self, listings: list[EngineListing]) -> None:
        self.listings = listings
        self.listed.emit(listings)
        self.models_changed.emit([m for listing in listings for m in listing.models])

    def _on_added(self, result: tuple[str, str]) -> None:
        name, problem = result
        if problem:
            self.add_failed.emit(problem)
            return
        self.added.emit(name)
        self.refresh()

    def _on_failed(self, exc: BaseException) -> None:
        self.add_failed.emit(f"The engines could not be read: {exc}")


def hosts_of(listings: list[EngineListing]) -> list[tuple[str, str]]:
    """(host:port, engine name) of each engine, for the Privacy tab."""
    return [(":".join(map(str, host_port(listing.engine))), listing.engine.name) for listing in listings]


__all__ = ["EngineService", "hosts_of"]
