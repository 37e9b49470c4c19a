"""Hub search, repository listings and fit verdicts off the GUI thread.

Nothing here touches the network until the person acts in the download pane: every call is made
from a pane action (search, choosing a repository), and each runs on a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.core.engine.loader import detect_hardware
from desktop.core.hub.client import HubClient
from desktop.core.hub.errors import HubError
from desktop.core.hub.remote_fit import UNKNOWN, FitOptions, judge, reference_choice, remote_info
from desktop.core.models.names import group_files
from desktop.core.system.settings import Settings
from desktop.services.background import Worker
from desktop.services.secrets_service import SecretsService


@dataclass(frozen=True)
class FileVerdict:
    """The fit verdict for one downloadable model (a file, or the parts of a split file)."""

    repo_id: str
    name: str
    label: str      # a label of desktop.core.hub.remote_fit.HubFit: runs well / tight / will not fit / ...
    reason: str


class HubService(QObject):
    """Signals:
        search_finished(object results, int page, str query): a page of :class:`RepoSummary`
        repo_loaded(object details, object choices): a repository's files grouped as models
        verdict_ready(object FileVerdict): one model's fit verdict (they arrive one by one)
        failed(str kind, str message): a Hub call failed; ``kind`` as in :class:`HubError`
            ("offline", "auth", "not_found", "rate_limited", "server", "bad_response")
    """

    search_finished = Signal(object, int, str)
    repo_loaded = Signal(object, object)
    verdict_ready = Signal(object)
    failed = Signal(str, str)

    def __init__(self, secrets: SecretsService, settings: Settings,
                 hardware: Callable[[], Any] | None = None, endpoint: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._secrets = secrets
        self._settings = settings
        self._hardware = hardware
        self._hardware_info: Any = None
        self._header_cache: dict[tuple[str, str, str], Any] = {}
        self._endpoint = endpoint
        self._runner = Worker("cove-hub", self._report, self, expected=(HubError,))
        self._verdicts = Worker("cove-hub-fit", self._report, self, expected=(HubError,))
        self._search_generation = 0
        self._repo_generation = 0

    def client(self) -> Any:
        """A Hub client with the person's token (blocking: worker threads only)."""
        return HubClient(endpoint=self._endpoint, token=self._secrets.token())

    # -- search ------------------------------------------------------------------------------------
    def search(self, query: str, sort: str = "downloads", page: int = 0) -> None:
        """Search GGUF repositories; a newer search makes older results irrelevant."""
        self._search_generation += 1
        generation = self._search_generation
        self._runner.submit(
            lambda: self.client().search(query, sort=sort, page=page),
            lambda results: generation == self._search_generation and self.search_finished.emit(results, page, query),
            self._report)

    # -- repository --------------------------------------------------------------------------------
    def load_repo(self, repo_id: str) -> None:
        """List a repository's GGUF files, then compute each model's fit verdict in turn."""
        self._repo_generation += 1
        generation = self._repo_generation

        def job() -> tuple[Any, Any]:
            details = self.client().repo(repo_id)
            return details, group_files(details.files)

        def done(result: tuple[Any, Any]) -> None:
            if generation != self._repo_generation:
                return
            details, choices = result
            self.repo_loaded.emit(details, choices)
            self._hardware_info = None  # free memory changes: read it again for each repository
            reference = reference_choice(choices)
            for choice in choices:
                self._verdicts.submit(lambda c=choice: self._verdict(details, reference, c, generation),
                                      lambda v: v is not None and self.verdict_ready.emit(v),
                                      lambda exc, c=choice: self.verdict_ready.emit(_failed_verdict(repo_id, c, exc)))

        self._runner.submit(job, done, self._report)

    def _header(self, details: Any, choice: Any) -> Any:
        """The GGUF header of ``choice`` read over the network, once per repository revision."""
        key = (details.repo_id, details.revision, choice.name)
        if key not in self._header_cache:
            self._header_cache[key] = remote_info(self.client(), choice)
        return self._header_cache[key]

    def _verdict(self, details: Any, reference: Any, choice: Any, generation: int) -> FileVerdict | None:
        """Runs on the fit thread: :func:`desktop.core.hub.remote_fit.judge`, the verdict ``cove models
        files`` gives too, with one header (the smallest complete file's, a few MB) per repository."""
        if generation != self._repo_generation:
            return None  # the person moved on to another repository
        if self._hardware_info is None:
            self._hardware_info = (self._hardware or detect_hardware)()
        fit = judge(choice, reference, lambda c: self._header(details, c), self._hardware_info,
                    FitOptions.from_settings(self._settings))
        return FileVerdict(details.repo_id, choice.name, fit.label, fit.reason)

    def _report(self, exc: BaseException) -> None:
        self.failed.emit(getattr(exc, "kind", "bad_response"), _short(exc))

    def stop(self) -> None:
        """End the worker threads (bounded wait)."""
        self._runner.stop(0.5)
        self._verdicts.stop(0.5)


def _failed_verdict(repo_id: str, choice: Any, exc: BaseException) -> FileVerdict:
    """The verdict cell when judging failed unexpectedly (judge itself reports the Hub's and the file's failures)."""
    return FileVerdict(repo_id, choice.name, UNKNOWN, _short(exc))


def _short(exc: BaseException) -> str:
    """A one-line message for a person."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
