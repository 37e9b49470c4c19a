"""File names from a Hub listing: safety, quantization, split groups."""

from __future__ import annotations

import random
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from desktop.core.hub.client import RemoteFile
from desktop.core.models.names import (
    group_files,
    is_later_part,
    is_projector,
    quantization,
    safe_relative_path,
    split_group,
    split_part_names,
)
from tests.helpers.fakehub import HOSTILE_NAMES


@pytest.mark.parametrize("name", ["model.gguf", "sub/dir/m-Q4_K_M.gguf", "Q8_0/x-00001-of-00002.gguf",
                                  "modèle-é.gguf", "a b.gguf", ".hidden.gguf", "x..y.gguf"])
def test_safe_names_pass(name: str) -> None:
    assert safe_relative_path(name) == PurePosixPath(name)


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "", ".", "..", "a//b.gguf", "a/./b.gguf", "x.gguf/", "/x.gguf",
                                  "C:x.gguf", "c:/x.gguf", "\\x.gguf", "a\\b.gguf", "CON", "nul.gguf", "dir/aux.txt/x",
                                  "COM1.gguf", "x.gguf.", "x.gguf ", " x.gguf", "a:b.gguf", "x\x7f.gguf",
                                  "x\n.gguf", 'q"uote.gguf', "a*b.gguf", "x" * 1025, "a/../b.gguf"])
def test_hostile_names_raise(name: str) -> None:
    with pytest.raises(ValueError, match="file name"):
        safe_relative_path(name)


def test_what_passes_stays_inside_the_folder_on_every_platform(tmp_path: Path) -> None:
    """Random names from the characters that matter: whatever is accepted stays below the folder,
    joined the POSIX way and the Windows way."""
    rng = random.Random(3)
    alphabet = ["a", "b", ".", "..", "/", "\\", ":", "C:", " ", "\x00", "~", "$", "%2e", "nul", "gguf"]
    accepted = 0
    for _ in range(20_000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        try:
            path = safe_relative_path(name)
        except ValueError:
            continue
        accepted += 1
        assert (tmp_path / path).resolve().is_relative_to(tmp_path.resolve()), name
        windows = PureWindowsPath("C:\\models") / PureWindowsPath(name)
        assert windows.parts[:2] == ("C:\\", "models") and ".." not in windows.parts, name
    assert accepted > 500


@pytest.mark.parametrize(("filename", "quant"), [
    ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"), ("qwen2.5-7b-instruct-q8_0.gguf", "Q8_0"),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"), ("model-f16.gguf", "F16"), ("model.BF16.gguf", "BF16"),
    ("Meta-Llama-3.1-8B-Instruct-IQ3_XS.gguf", "IQ3_XS"), ("gemma-3-4b-it-UD-Q4_K_XL.gguf", "Q4_K_XL"),
    ("IQ2_XXS/model-00001-of-00003.gguf", "IQ2_XXS"), ("phi-4-Q6_K.gguf", "Q6_K"), ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
    ("model-fp16.gguf", "F16"), ("Qwen2.5-7B.gguf", ""), ("mmproj-model.gguf", ""), ("x-Q3_K_L.gguf", "Q3_K_L"),
])
def test_quantization_from_names(filename: str, quant: str) -> None:
    assert quantization(filename) == quant


def test_split_group() -> None:
    assert split_group("dir/Qwen-Q4_K_M-00002-of-00003.gguf") == ("dir/Qwen-Q4_K_M", 2, 3)
    assert split_group("model.gguf") is None
    assert split_group("m-00004-of-00003.gguf") is None and split_group("m-00000-of-00003.gguf") is None
    assert split_group("m-1-of-3.gguf") is None


def test_the_parts_of_a_split_model_from_its_first_part() -> None:
    assert split_part_names("dir/x-00001-of-00003.GGUF") == ("dir/x-00001-of-00003.GGUF", "dir/x-00002-of-00003.GGUF",
                                                            "dir/x-00003-of-00003.GGUF")
    assert split_part_names("x-00002-of-00003.gguf") is None and split_part_names("x.gguf") is None
    assert [is_later_part(n) for n in ("x-00001-of-00002.gguf", "x-00002-of-00002.gguf", "x.gguf",
                                       "x-00003-of-00002.gguf")] == [False, True, False, False]


def remote(name: str, size: int) -> RemoteFile:
    return RemoteFile("o/r", name, "0" * 40, size, "", f"http://hub/o/r/resolve/{name}")


def test_group_files_makes_one_choice_per_model() -> None:
    files = [remote("big-Q8_0.gguf", 900), remote("small-Q4_K_M.gguf", 400), remote("mmproj-f16.gguf", 50),
             remote("Q6_K/m-Q6_K-00002-of-00002.gguf", 300), remote("Q6_K/m-Q6_K-00001-of-00002.gguf", 500),
             remote("half-Q2_K-00001-of-00003.gguf", 10)]
    choices = group_files(files)
    assert [c.name for c in choices] == ["half-Q2_K-00001-of-00003.gguf", "small-Q4_K_M.gguf",
                                         "Q6_K/m-Q6_K-00001-of-00002.gguf", "big-Q8_0.gguf"]
    split = choices[2]
    assert split.split and split.complete and split.size == 800 and split.quant == "Q6_K"
    assert [p.filename for p in split.parts] == ["Q6_K/m-Q6_K-00001-of-00002.gguf", "Q6_K/m-Q6_K-00002-of-00002.gguf"]
    assert not choices[0].complete and choices[0].expected_parts == 3
    assert not choices[1].split and choices[1].complete and choices[1].quant == "Q4_K_M"
    assert is_projector("sub/mmproj-model-f16.gguf") and not is_projector("model.gguf")
