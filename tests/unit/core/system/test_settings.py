"""Settings: defaults, round trips, damaged files and atomic saves."""

from __future__ import annotations

import json
from pathlib import Path

from desktop.core.system.settings import (
    SCHEMA_VERSION,
    GenerationSettings,
    Settings,
    default_threads,
    load_settings,
    save_settings,
)


def test_defaults() -> None:
    s = Settings()
    g = s.generation
    assert (s.last_model, s.last_conversation_id, s.window_geometry, s.splitter_state) == ("", 0, "", "")
    assert s.debug_log is False  # no message text in the log unless the person asks for it
    assert 0.0 < g.temperature <= 2.0
    assert 0.0 < g.top_p <= 1.0
    assert g.max_tokens > 0
    assert g.seed == -1  # random
    assert g.n_ctx == 0 and g.n_threads == 0  # automatic
    assert g.system_prompt == ""
    assert g.effective_threads() == default_threads()


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "nope" / "settings.json") == Settings()


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config" / "settings.json"
    s = Settings(
        generation=GenerationSettings(temperature=0.2, top_p=0.5, top_k=7, min_p=0.0, repeat_penalty=1.3,
                                      seed=99, max_tokens=64, system_prompt="Be terse.\nÜmlaut ✓",
                                      n_ctx=2048, n_threads=3),
        last_model="/models/a.gguf", last_conversation_id=12, window_geometry="abc=", splitter_state="def=",
        debug_log=True,
    )
    save_settings(path, s)
    assert load_settings(path) == s
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert load_settings(path).generation.effective_threads() == 3


def test_damaged_json_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    for damaged in ('{"generation": {"temperature": 0.1', "", "\x00\xff garbage", "[1, 2, 3]", "null", '"text"'):
        path.write_text(damaged, encoding="utf-8", errors="surrogateescape")
        assert load_settings(path) == Settings(), damaged
    path.write_bytes(b"\xff\xfe\x00binary")
    assert load_settings(path) == Settings()


def test_wrong_types_fall_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "generation": {"temperature": "hot", "top_k": 2.5, "max_tokens": True, "seed": None,
                       "system_prompt": 5, "top_p": 1},  # an int where a float is wanted is fine
        "last_model": 3, "last_conversation_id": "7", "window_geometry": ["x"], "splitter_state": "kept",
        "debug_log": "yes",  # only a real true turns message text in the log on
    }), encoding="utf-8")
    s = load_settings(path)
    d = GenerationSettings()
    assert s.generation.temperature == d.temperature
    assert s.generation.top_k == d.top_k
    assert s.generation.max_tokens == d.max_tokens
    assert s.generation.seed == d.seed
    assert s.generation.system_prompt == d.system_prompt
    assert s.generation.top_p == 1.0 and isinstance(s.generation.top_p, float)
    assert (s.last_model, s.last_conversation_id, s.window_geometry) == ("", 0, "")
    assert s.splitter_state == "kept"
    assert s.debug_log is False


def test_generation_not_a_dict_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"generation": "fast", "last_model": "m"}), encoding="utf-8")
    s = load_settings(path)
    assert s.generation == GenerationSettings()
    assert s.last_model == "m"


def test_unknown_keys_ignored(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 999, "future_option": {"a": 1},
                                "generation": {"temperature": 0.3, "mirostat": 2},
                                "last_model": "x"}), encoding="utf-8")
    s = load_settings(path)
    assert s.generation.temperature == 0.3
    assert s.last_model == "x"
    assert not hasattr(s, "future_option") and not hasattr(s.generation, "mirostat")


def test_atomic_save_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    for i in range(5):
        save_settings(path, Settings(last_model=f"m{i}"))
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    assert load_settings(path).last_model == "m4"


def test_default_threads_positive() -> None:
    assert isinstance(default_threads(), int)
    assert default_threads() >= 1
    assert GenerationSettings(n_threads=0).effective_threads() >= 1
