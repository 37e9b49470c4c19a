"""Composition root: builds every service, wires them, owns start-up and shutdown order."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from desktop import __version__
from desktop.core.engine.loader import clear_crash_marker, read_crash_marker
from desktop.core.hub.catalog import load_catalog
from desktop.core.library.folder import effective_models_dir
from desktop.core.library.model_library import ModelLibrary
from desktop.core.system import network_guard
from desktop.core.system.locks import READ_ONLY_MESSAGE, FileLock, window_lock_path
from desktop.core.system.logs import setup_logging
from desktop.core.system.paths import AppPaths, app_paths
from desktop.core.system.secrets import SecretStore
from desktop.core.system.settings import Settings, load_settings, save_settings
from desktop.core.text.markdown import warm_up
from desktop.services.chat_controller import ChatController
from desktop.services.chat_settings_service import ChatSettingsService
from desktop.services.download_service import DownloadService
from desktop.services.engine_service import EngineService
from desktop.services.generation_service import GenerationService
from desktop.services.hub_service import HubService
from desktop.services.library_service import LibraryService
from desktop.services.secrets_service import SecretsService
from desktop.services.server_service import ServerService
from desktop.services.store_service import StoreService
from desktop.services.tool_service import ToolService
from desktop.services.tool_turn import ToolTurn
from desktop.services.transfer_service import TransferService
from desktop.ui.main_window import MainWindow
from desktop.ui.models.download_pane import DownloadPane
from desktop.ui.models.library_pane import LibraryPane
from desktop.ui.models.models_dialog import ModelsDialog
from desktop.ui.settings.engines_panel import EnginesPanel
from desktop.ui.settings.server_panel import ServerIndicator, ServerPanel
from desktop.ui.theme import app_icon, apply_palette

GUI_SWITCH_INTERVAL_S = 0.0005
logger = logging.getLogger(__name__)


class CoveApp(QObject):
    """One running Cove: services, controller and window. Tests build it directly."""

    def __init__(self, paths: AppPaths, *, safe_mode: bool = False) -> None:
        super().__init__()
        # Every Qt virtual call that PySide checks for a Python override takes the GIL. While a
        # worker runs Python (a chat template, a large import), each take waits up to the switch
        # interval (5 ms by default), and a repaint makes hundreds of them: the window froze for
        # 250-400 ms. 0.5 ms keeps the GUI thread's waits short at a negligible cost to the workers.
        sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
        self.paths = paths.ensure()
        self.safe_mode = safe_mode
        self.settings: Settings = load_settings(paths.settings_file)
        self.crash = read_crash_marker(paths)
        self.library = ModelLibrary(paths, self.settings)
        # One window owns the data; a second one on the same folder opens it read-only.
        self.instance_lock = FileLock(window_lock_path(paths.database))
        self.read_only = not self.instance_lock.acquire()
        self.store = StoreService(paths.database, read_only=self.read_only)
        secret_store = SecretStore()
        self.generation = GenerationService(paths, self.store.update_message, conservative=safe_mode,
                                            secrets=secret_store)
        self.network = network_guard.install(network_guard.NetworkLog())
        self.secrets = SecretsService(secret_store)
        self.tools = ToolService(paths, self.settings, token_for=_keyring_token(secret_store), parent=self)
        self.controller = ChatController(self.store, self.generation, self.library, self.settings,
                                         tool_turn=ToolTurn(self.tools, self.store, self.settings, parent=self))
        self.chat_settings = ChatSettingsService(self.controller, self.store, parent=self)
        self.window = MainWindow(self.controller, self.network, self.secrets, self.chat_settings,
                                 TransferService(self.store, parent=self), log_dir=paths.log_dir,
                                 tools=self.tools, mcp_config=paths.mcp_config)
        self.server = ServerService(self.generation, self.settings, secret_store, parent=self)
        self.window.statusBar().addPermanentWidget(ServerIndicator(self.server))
        self.engines = EngineService(paths, secret_store, parent=self)
        self.engines.models_changed.connect(self.controller.set_remote_models)
        self.window.engines = self.engines
        self.window.settings_tabs += [("Server", lambda: ServerPanel(self.server)),
                                      ("Engines", lambda: EnginesPanel(self.engines))]
        self.hub = HubService(self.secrets, self.settings, parent=self)
        self.downloads = DownloadService(self.hub.client, lambda: effective_models_dir(self.paths, self.settings),
                                         paths.downloads_file, parent=self)
        self.downloads.model_downloaded.connect(lambda _item: self.controller.refresh_models())
        self.downloads.failed.connect(self.window.show_problem)
        self.window.models_dialog_factory = self._models_dialog
        self._build_reported = False
        self._library_service: LibraryService | None = None
        self.controller.model_state.connect(self._report_build)
        self.window.setWindowTitle(f"Cove {__version__}")
        self.window.restore_state(self.settings.window_geometry, "")
        self.window.closing.connect(self.shutdown)
        self.store.error.connect(self.window.show_problem)
        self.store.notice.connect(self.window.show_problem)
        self.store.opened.connect(self._on_store_opened)
        self._shut = False

    def start(self) -> None:
        """Show the window, then do everything slow in the background."""
        self.window.show()
        self.window.restore_state("", self.settings.splitter_state)  # sizes need the shown window
        self.store.start()
        if self.read_only:
            self.window.set_read_only(READ_ONLY_MESSAGE)
        threading.Thread(target=warm_up, name="cove-warm-up", daemon=True).start()  # Pygments lexers
        if self.crash is not None:
            self.window.show_problem(
                f"Cove closed unexpectedly while loading {Path(self.crash.path).name} last time. "
                "It was not loaded again. Pick it from the model list to try once more, or choose another model. "
                "If Cove keeps closing, start it in safe mode: cove --safe-mode.")
            clear_crash_marker(self.paths)

    def _on_store_opened(self) -> None:
        c = self.controller
        self.store.submit(lambda s: s.purge_deleted(0.0))  # Undo is offered within a session only
        c.refresh_conversations()
        c.refresh_models()
        self.tools.reload()
        self.engines.refresh()
        self.chat_settings.refresh_presets()
        if self.settings.server.enabled and not self.read_only:
            self.server.apply(self.settings.server)
        if self.settings.last_conversation_id:
            c.open_conversation(self.settings.last_conversation_id)
        else:
            c.new_conversation()
        if self.safe_mode:
            self.window.model_status.setText("Safe mode: no model was loaded. Pick one to start.")
            return
        crashed = self.crash.path if self.crash else ""
        self.store.submit(lambda _s: self.library.default(self.settings.last_model), self._auto_load(crashed))

    def _auto_load(self, crashed: str):  # noqa: ANN202 - returns a callback
        def load(entry) -> None:  # noqa: ANN001 - ModelEntry | None
            if entry is None:
                self.window.model_status.setText("No model yet: open a .gguf file to start.")
            elif entry.key == crashed:
                self.window.model_status.setText("No model loaded (the last one crashed while loading).")
            else:
                self.controller.select_model(entry.key)
        return load

    def _report_build(self, state: str, _text: str) -> None:
        """Say once, on standard error, which llama.cpp build and machine Cove runs on."""
        if state != "ready" or self._build_reported:
            return
        self._build_reported = True
        lines = self.controller.model_info.get("hardware", [])
        for line in lines:
            if line.startswith(("llama.cpp build:", "llama.cpp backend:", "CPU:")):
                print(f"cove: {line}", file=sys.stderr, flush=True)
                logger.info("%s", line)

    def _folder_change_refusal(self) -> str:
        """Why the models folder cannot move now ("" when it can)."""
        waiting = self.downloads.unfinished()
        if not waiting:
            return ""
        return (f"{len(waiting)} download{'s are' if len(waiting) > 1 else ' is'} not finished; its partial files "
                "are in the current models folder. Let it finish or cancel it (Models… → Download), then "
                "change the folder.")

    def _models_dialog(self) -> ModelsDialog:
        """The Models window (built on first use: nothing about the Hub runs before)."""
        pane = DownloadPane(self.hub, self.downloads, self.secrets, load_catalog())
        pane.show_downloads()
        library = LibraryService(self.paths, self.settings, parent=self, library=self.library)
        library.changed.connect(self.controller.refresh_models)
        self.downloads.model_downloaded.connect(lambda _item: library.refresh())
        library.folder_changed.connect(lambda folder: self.downloads.set_models_dir(Path(folder)))
        library.folder_change_refusal = self._folder_change_refusal
        self._library_service = library
        library_pane = LibraryPane(library)
        library_pane.set_current_model(self.controller.model_path)
        library_pane.thinking_markers_set.connect(self._set_thinking_markers)
        self.controller.model_state.connect(
            lambda state, _t: state == "ready" and library_pane.set_current_model(self.controller.model_path))
        return ModelsDialog(pane, library_pane, self.window)

    def _set_thinking_markers(self, path: str, markers: list) -> None:
        """Remember a model's thinking markers; a loaded model is loaded again to use them."""
        if markers:
            self.settings.thinking_markers[path] = list(markers)
        else:
            self.settings.thinking_markers.pop(path, None)
        if path == self.controller.model_path:
            self.controller.select_model(path)

    def shutdown(self) -> None:
        """Save settings, stop generating, unload the model, close the database (bounded waits)."""
        if self._shut:
            return
        self._shut = True
        self.settings.window_geometry, self.settings.splitter_state = self.window.geometry_state()
        if not self.read_only:  # the window that owns the data keeps its settings
            try:
                save_settings(self.paths.settings_file, self.settings)
            except OSError:
                logger.exception("could not save settings")
        self.downloads.shutdown()
        if self._library_service is not None:
            self._library_service.shutdown()
        self.hub.stop()
        self.tools.shutdown()
        self.server.shutdown()
        self.engines.stop()
        self.secrets.stop()
        self.generation.shutdown()
        self.store.stop()
        self.instance_lock.release()
        network_guard.uninstall(self.network)


def _keyring_token(secrets: SecretStore):  # noqa: ANN202 - returns the host's token lookup
    """An HTTP MCP server's bearer token from the keyring (None when there is none or no keyring);
    called on the MCP host's thread, never the GUI's."""
    def token_for(secret_name: str) -> str | None:
        try:
            return secrets.get(secret_name)
        except Exception:  # noqa: BLE001 - no keyring: the server is reached without a token
            logger.warning("no keyring: the MCP server's token %s cannot be read", secret_name)
            return None
    return token_for


def run_gui(args: argparse.Namespace) -> int:
    """Start the window and run until it closes."""
    os.environ.setdefault("QT_QUICK_BACKEND", "software")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Cove")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("cove")
    app.setWindowIcon(app_icon())
    apply_palette(app)
    paths = app_paths(args.basedir)
    setup_logging(paths, debug=load_settings(paths.settings_file).debug_log)
    logger.info("Cove %s: window%s", __version__, " (safe mode)" if args.safe_mode else "")
    cove = CoveApp(paths, safe_mode=args.safe_mode)
    cove.start()
    if os.environ.get("COVE_REPORT_READY"):  # for tests and benchmarks that start Cove as a process
        QTimer.singleShot(0, lambda: print("cove: window ready", file=sys.stderr, flush=True))
        cove.controller.model_state.connect(
            lambda state, text: print(f"cove: model {state}: {text}", file=sys.stderr, flush=True))
    code = app.exec()
    cove.shutdown()
    return code
