"""The library pane, driven through its real widgets and dialogs, with the real starter model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from desktop.core.library.model_library import ModelLibrary
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import Settings, load_settings
from desktop.services.library_service import LibraryService
from desktop.ui.models.library_pane import COLUMNS, LibraryPane
from tests.helpers.templated_model import with_template
from tests.unit.core.library.test_hf_cache import SHA_NEW, cache_file

TASK_TIMEOUT_MS = 90_000  # an import probes the model in a child process
COPY_NAME = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture
def pane(qtbot, paths: AppPaths, tmp_path: Path) -> Iterator[LibraryPane]:
    settings = Settings()
    service = LibraryService(paths, settings, library=ModelLibrary(paths, settings, hf_cache=tmp_path / "hub"))
    widget = LibraryPane(service)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(service.listed, timeout=10_000):
        widget.show()
    yield widget
    service.shutdown()


def row(pane: LibraryPane, name: str) -> dict[str, str]:
    for r in range(pane.table.rowCount()):
        if pane.table.item(r, 0).text() == name:
            return {column: pane.table.item(r, c).text() for c, column in enumerate(COLUMNS)}
    raise AssertionError(f"{name} is not listed: {[pane.table.item(r, 0).text() for r in range(pane.table.rowCount())]}")


def names(pane: LibraryPane) -> list[str]:
    return [pane.table.item(r, 0).text() for r in range(pane.table.rowCount())]


def run_task(qtbot, pane: LibraryPane, start) -> str:
    """Start a task with ``start()``; wait for it and the listing after it; return its message."""
    service, messages = pane.service, []
    service.done.connect(messages.append)
    try:
        with qtbot.waitSignals([service.done, service.listed], timeout=TASK_TIMEOUT_MS, order="strict"):
            start()
    finally:
        service.done.disconnect(messages.append)
    return messages[0]


def import_through_dialog(qtbot, pane: LibraryPane, path: Path, link: bool) -> str:
    def start() -> None:
        (pane.link_button if link else pane.copy_button).click()
        assert pane.file_dialog is not None and pane.file_dialog.isVisible()
        pane.file_dialog.selectFile(str(path))
        pane.file_dialog.accept()
    return run_task(qtbot, pane, start)


def test_starter_listed_with_its_metadata_and_disk_use(pane: LibraryPane, starter_model: Path) -> None:
    starter = row(pane, "SmolLM2-135M-Instruct (Q4_1)")
    assert starter == {"Name": "SmolLM2-135M-Instruct (Q4_1)", "Source": "Starter (part of Cove)",
                       "Architecture": "llama", "Parameters": "135M", "Quantization": "Q4_1",
                       "Trained context": "8,192", "Size": "98.4 MB", "Chat template": "yes",
                       "Thinking": "answers directly"}
    assert pane.disk_label.text().startswith("1 model, 98.4 MB on disk;")
    assert pane.folder_label.text() == str(pane.service.models_dir)
    pane.select("SmolLM2-135M-Instruct (Q4_1)")
    assert not pane.delete_button.isEnabled() and "part of Cove" in pane.delete_button.toolTip()
    assert not pane.progress.isVisible()
    pane.set_current_model(str(starter_model))
    assert names(pane) == ["SmolLM2-135M-Instruct (Q4_1) (in use)"]
    assert pane.selected_item().entry.path == starter_model  # the selection survives the re-listing


def test_copy_in_shows_progress_then_the_model(qtbot, pane: LibraryPane, starter_model: Path) -> None:
    progress: list[tuple[int, int]] = []
    pane.service.progress.connect(lambda done, total: progress.append((done, total)))
    message = import_through_dialog(qtbot, pane, starter_model, link=False)
    assert message == f"{COPY_NAME} was copied into the library."
    assert pane.message.text() == message
    copied = pane.service.models_dir / starter_model.name
    assert copied.read_bytes() == starter_model.read_bytes()
    assert row(pane, COPY_NAME)["Source"] == "Models folder"
    assert row(pane, COPY_NAME)["Quantization"] == "Q4_1"
    size = starter_model.stat().st_size
    assert progress and progress[-1] == (size, size)
    assert pane.disk_label.text().startswith("2 models, 197 MB on disk (98.4 MB in the models folder)")
    assert not pane.progress.isVisible()


def test_a_thinking_model_is_shown_as_one(qtbot, pane: LibraryPane, tmp_path: Path,
                                         starter_model: Path) -> None:
    thinker = with_template(starter_model, "Qwen-QwQ-32B", tmp_path / "mine" / "smol-qwq.gguf")
    import_through_dialog(qtbot, pane, thinker, link=True)
    assert row(pane, "smol-qwq")["Thinking"] == "thinks when switched on"  # QwQ's template: off unless asked
    qwen3 = with_template(starter_model, "Qwen-Qwen3-0.6B", tmp_path / "mine" / "smol-qwen3.gguf")
    import_through_dialog(qtbot, pane, qwen3, link=True)
    assert row(pane, "smol-qwen3")["Thinking"] == "thinks · can switch off"


def test_thinking_markers_for_a_model_are_asked_and_shown(qtbot, pane: LibraryPane) -> None:
    chosen = []

    def remember(path: str, markers: list) -> None:  # what the app does with them
        chosen.append((path, markers))
        pane.service.settings.thinking_markers[path] = markers

    pane.thinking_markers_set.connect(remember)
    pane.select("SmolLM2-135M-Instruct (Q4_1)")
    assert pane.markers_button.isEnabled()
    pane.markers_button.click()
    dialog = pane.markers_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.open_marker.setText("<reflect>")
    dialog.close_marker.setText("</reflect>")
    dialog.accept()
    path = str(pane.selected_item().entry.path)
    assert chosen == [(path, ["<reflect>", "</reflect>"])]
    assert row(pane, "SmolLM2-135M-Instruct (Q4_1)")["Thinking"] == "thinks · your markers <reflect> … </reflect>"


def test_link_keeps_the_file_where_it_is(qtbot, pane: LibraryPane, tmp_path: Path,
                                         starter_model: Path) -> None:
    outside = tmp_path / "mine" / "linked-model.gguf"
    outside.parent.mkdir()
    shutil.copyfile(starter_model, outside)
    assert import_through_dialog(qtbot, pane, outside, link=True) == "linked-model was linked into the library."
    assert row(pane, "linked-model")["Source"] == "Linked file"
    assert list(pane.service.models_dir.iterdir()) == []

    pane.select("linked-model")
    assert pane.delete_button.text() == "Forget…"
    pane.delete_button.click()
    assert "stays in" in pane.confirm_box.text() and "nothing is deleted" in pane.confirm_box.text()
    forget = next(b for b in pane.confirm_box.buttons() if b.text() == "Forget")
    run_task(qtbot, pane, forget.click)
    assert "linked-model" not in names(pane) and outside.is_file()


def test_malformed_file_is_refused_with_its_message(qtbot, pane: LibraryPane, tmp_path: Path,
                                                    starter_model: Path) -> None:
    cut = tmp_path / "cut-short.gguf"
    cut.write_bytes(starter_model.read_bytes()[:2_000_000])
    with qtbot.waitSignal(pane.service.failed, timeout=TASK_TIMEOUT_MS) as blocker:
        pane.copy_button.click()
        pane.file_dialog.selectFile(str(cut))
        pane.file_dialog.accept()
    assert "cut-short.gguf" in blocker.args[0] and pane.message.text() == blocker.args[0]
    assert list(pane.service.models_dir.iterdir()) == []
    qtbot.waitUntil(lambda: pane.copy_button.isEnabled())


def test_delete_asks_first(qtbot, pane: LibraryPane, starter_model: Path) -> None:
    model = pane.service.models_dir / "to-delete.gguf"
    shutil.copyfile(starter_model, model)
    with qtbot.waitSignal(pane.service.listed):
        pane.refresh_button.click()
    assert pane.select("to-delete")
    pane.delete_button.click()
    box = pane.confirm_box
    assert box.isVisible() and "Delete to-delete?" in box.text() and "cannot be undone" in box.text()
    assert "model in use" not in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert model.exists() and "to-delete" in names(pane)

    pane.set_current_model(str(model))
    pane.delete_button.click()
    assert "It is the model in use" in pane.confirm_box.text()
    pane.confirm_box.button(QMessageBox.StandardButton.Cancel).click()

    pane.delete_button.click()
    confirm = next(b for b in pane.confirm_box.buttons() if b.text() == "Delete")
    assert run_task(qtbot, pane, confirm.click) == "to-delete was deleted."
    assert not model.exists() and not any(n.startswith("to-delete") for n in names(pane))
    assert pane.disk_label.text().startswith("1 model, 98.4 MB")


def test_hugging_face_cache_model_is_listed_and_can_be_hidden(qtbot, pane: LibraryPane, tmp_path: Path,
                                                              starter_model: Path) -> None:
    snapshot = cache_file(tmp_path / "hub", "HuggingFaceTB/SmolLM2-GGUF", "smol.Q4_1.gguf", SHA_NEW, starter_model)
    with qtbot.waitSignal(pane.service.listed):
        pane.refresh_button.click()
    assert row(pane, "smol.Q4_1")["Source"] == "Hugging Face cache: HuggingFaceTB/SmolLM2-GGUF"
    assert row(pane, "smol.Q4_1")["Architecture"] == "llama"
    pane.select("smol.Q4_1")
    pane.delete_button.click()
    assert "hf cache rm model/HuggingFaceTB/SmolLM2-GGUF" in pane.confirm_box.text()
    run_task(qtbot, pane, next(b for b in pane.confirm_box.buttons() if b.text() == "Forget").click)
    assert "smol.Q4_1" not in names(pane) and snapshot.is_file()


def test_use_emits_the_model_path(qtbot, pane: LibraryPane, starter_model: Path) -> None:
    pane.select("SmolLM2-135M-Instruct (Q4_1)")
    with qtbot.waitSignal(pane.model_chosen) as blocker:
        pane.use_button.click()
    assert blocker.args == [str(starter_model)]


def test_change_folder_moves_the_models(qtbot, pane: LibraryPane, paths: AppPaths, tmp_path: Path,
                                        starter_model: Path) -> None:
    old = pane.service.models_dir / "owner" / "repo" / "moving.gguf"
    old.parent.mkdir(parents=True)
    shutil.copyfile(starter_model, old)
    with qtbot.waitSignal(pane.service.listed):
        pane.refresh_button.click()
    new_folder = tmp_path / "new models"
    new_folder.mkdir()

    pane.change_folder_button.click()
    pane.folder_dialog.selectFile(str(new_folder))
    pane.folder_dialog.accept()
    box = pane.move_box
    assert box is not None and box.isVisible()
    assert "holds 1 model (98.4 MB)" in box.text() and str(new_folder) in box.text()
    move = next(b for b in box.buttons() if b.text() == "Move models")
    with qtbot.waitSignal(pane.service.folder_changed, timeout=TASK_TIMEOUT_MS):
        message = run_task(qtbot, pane, move.click)
    assert message == f"Moved 1 model file to {new_folder}."
    moved = new_folder / "owner" / "repo" / "moving.gguf"
    assert moved.is_file() and not old.exists()
    assert row(pane, "moving")["Source"] == "Models folder"
    assert pane.folder_label.text() == str(new_folder)
    assert pane.service.settings.models_dir == str(new_folder)
    assert pane.service.wait_idle()
    assert load_settings(paths.settings_file).models_dir == str(new_folder)  # saved at once


def test_change_folder_without_models_just_switches(qtbot, pane: LibraryPane, tmp_path: Path) -> None:
    with qtbot.waitSignal(pane.service.folder_changed, timeout=TASK_TIMEOUT_MS) as blocker:
        pane.folder_chosen(str(tmp_path / "fresh"))
    assert blocker.args == [str(tmp_path / "fresh")] and pane.move_box is None
    assert (tmp_path / "fresh").is_dir()


def test_cancel_stops_a_copy_and_leaves_nothing(qtbot, pane: LibraryPane, starter_model: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.core.library import importer as model_import

    real_copy = model_import.copy_file

    def held_copy(source, target, progress=None, cancel=None):
        def step(n: int) -> None:
            progress(n)
            cancel.wait(30)  # the copy waits after each chunk until the person presses Cancel
        real_copy(source, target, step, cancel)

    monkeypatch.setattr(model_import, "copy_file", held_copy)
    with qtbot.waitSignal(pane.service.progress, timeout=TASK_TIMEOUT_MS):
        pane.copy_button.click()
        pane.file_dialog.selectFile(str(starter_model))
        pane.file_dialog.accept()
    assert pane.progress.isVisible() and pane.cancel_button.isVisible()
    assert pane.task_label.text().startswith("Checking and copying SmolLM2-135M-Instruct.Q4_1.gguf")
    assert not pane.copy_button.isEnabled()
    with qtbot.waitSignal(pane.service.failed, timeout=TASK_TIMEOUT_MS) as blocker:
        pane.cancel_button.click()
    assert blocker.args == ["Cancelled: nothing was changed."]
    assert list(pane.service.models_dir.iterdir()) == []
    assert not pane.progress.isVisible() and pane.copy_button.isEnabled()
