"""``cove models pull REPO FILE``: download one model from the Hub into the models folder.

Progress goes to standard error (one updating line on a terminal, a line every few seconds
otherwise); the final path to standard output. An interrupted pull (Ctrl+C, a kill, a cut
connection) keeps its partial file and the same command continues it. Every file is checked
against the sha256 the Hub publishes before it is placed. Failure: exit status 1 and one line
``cove: reason``. The endpoint follows ``HF_ENDPOINT``; a token comes from ``HF_TOKEN``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from desktop.cli.hub import hub_client
from desktop.cli.output import fail
from desktop.core.downloads.download import DownloadError, download_model
from desktop.core.hub.client import HubClient, RemoteFile
from desktop.core.hub.errors import HubError
from desktop.core.models.names import group_files
from desktop.core.system.paths import AppPaths
from desktop.core.text.units import format_duration, format_size

LINE_EVERY_S = 0.2        # on a terminal
LOG_EVERY_S = 5.0         # to a file or pipe


def add_pull_arguments(pull: argparse.ArgumentParser) -> None:
    """The arguments of ``cove models pull``."""
    pull.add_argument("repo", help="the repository, e.g. HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
    pull.add_argument("file", help="the GGUF file in it (any part of a split model fetches every part)")


class ProgressLine:
    """Writes ``done of total (percent), speed, time left`` to ``err``, throttled."""

    def __init__(self, err: TextIO, label: str) -> None:
        self.err = err
        self.label = label
        self.tty = err.isatty()
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int, speed: float, eta: float | None) -> None:
        now = time.monotonic()
        if done < total and now - self._last < (LINE_EVERY_S if self.tty else LOG_EVERY_S):
            return
        self._last = now
        percent = 100 * done / total if total else 100
        text = (f"{self.label}: {format_size(done)} of {format_size(total)} ({percent:.0f}%)"
                + (f", {format_size(speed)}/s" if speed > 0 and done < total else "")
                + (f", {format_duration(eta)} left" if eta and done < total else ""))
        if self.tty:
            self.err.write("\r\x1b[K" + text)
        else:
            self.err.write(text + "\n")
        self._shown = True
        self.err.flush()

    def phase(self, phase: str) -> None:
        """Say when a kept partial is being checked."""
        if phase == "verifying" and not self._shown:
            self.err.write(f"{self.label}: checking what is already downloaded\n")
            self.err.flush()

    def end(self) -> None:
        """Finish the updating line."""
        if self.tty and self._shown:
            self.err.write("\n")
            self.err.flush()


def cmd_models_pull(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None,
                    err: TextIO | None = None) -> int:
    """Download ``args.file`` (all parts of its split model) from ``args.repo``; 0, or 1 with one line."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    err = err or sys.stderr  # resolved at call time (tests capture sys.stderr)
    client = hub_client()
    progress = ProgressLine(err, args.file)
    try:
        files = _files_to_pull(client, args.repo, args.file)
        placed = download_model(client, files, paths.models_dir, progress, on_phase=progress.phase)
    except (HubError, DownloadError) as exc:
        progress.end()
        return fail(str(exc), err)
    except KeyboardInterrupt:
        progress.end()
        return fail("interrupted; the partial download is kept: run the same command to continue", err, 130)
    progress.end()
    for path in placed:
        out.write(f"{path}\n")
    return 0


def _files_to_pull(client: HubClient, repo: str, filename: str) -> list[RemoteFile]:
    """The RemoteFiles to fetch: the one named, or every part of its split model."""
    details = client.repo(repo)
    if filename in details.rejected:
        raise DownloadError(f"Cove refused the file name {filename!r}: it would be written outside the "
                            "models folder", "bad_name")
    by_name = {f.filename: f for f in details.files}
    if filename not in by_name:
        names = ", ".join(sorted(by_name)[:5]) or "none"
        raise DownloadError(f"{repo} has no GGUF file named {filename} (it has: {names})", "not_found")
    for choice in group_files(details.files):
        if filename in (p.filename for p in choice.parts):
            if not choice.complete:
                raise DownloadError(f"{filename} is part of a split model of {choice.expected_parts} files and "
                                    f"{repo} has only {len(choice.parts)} of them", "not_found")
            return list(choice.parts)
    return [by_name[filename]]   # a file group_files leaves out (a vision projector)
