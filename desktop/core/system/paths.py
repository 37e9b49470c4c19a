"""Where Cove keeps its files: platformdirs locations with one override.

Tests, the self-test and power users point Cove at another folder with ``--basedir`` or the
``COVE_BASEDIR`` environment variable; everything then lives below that one folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "Cove"
BASEDIR_ENV = "COVE_BASEDIR"


@dataclass(frozen=True)
class AppPaths:
    """The folders and files Cove reads and writes."""

    data_dir: Path
    config_dir: Path
    models_dir: Path
    log_dir: Path

    @property
    def database(self) -> Path:
        """SQLite file holding conversations and messages."""
        return self.data_dir / "cove.sqlite3"

    @property
    def settings_file(self) -> Path:
        """JSON file with the user's settings and window state."""
        return self.config_dir / "settings.json"

    @property
    def mcp_config(self) -> Path:
        """JSON file naming the MCP servers whose tools models may call (Claude Desktop's shape)."""
        return self.config_dir / "mcp.json"

    @property
    def engines_file(self) -> Path:
        """JSON file listing the remote engines the person added (their API keys are in the keyring)."""
        return self.config_dir / "engines.json"

    @property
    def library_file(self) -> Path:
        """JSON file listing model files the user opened from elsewhere."""
        return self.data_dir / "library.json"

    @property
    def probe_file(self) -> Path:
        """JSON file with the quarantine probe's verdicts, keyed by file identity."""
        return self.data_dir / "probes.json"

    @property
    def downloads_file(self) -> Path:
        """JSON file with the download queue (unfinished downloads resume from their partial files)."""
        return self.data_dir / "downloads.json"

    @property
    def crash_marker(self) -> Path:
        """Exists only while a model is being loaded in-process."""
        return self.data_dir / "loading.json"

    def kv_state(self, conversation_id: int) -> Path:
        """Where a conversation's KV cache is kept between sessions (a cache: safe to delete)."""
        return self.data_dir / "kv" / f"conversation-{conversation_id}.state"

    def ensure(self) -> AppPaths:
        """Create the folders (not the files); returns self."""
        for folder in (self.data_dir, self.config_dir, self.models_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def app_paths(basedir: str | os.PathLike[str] | None = None) -> AppPaths:
    """Paths for this user, or all below ``basedir`` (argument, else ``COVE_BASEDIR``)."""
    base = basedir if basedir is not None else os.environ.get(BASEDIR_ENV)
    if base:
        root = Path(base).expanduser().resolve()
        return AppPaths(root / "data", root / "config", root / "data" / "models", root / "logs")
    data = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    config = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    logs = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    return AppPaths(data, config, data / "models", logs)
