"""Real tokenizers of today's model families, from llama.cpp's vocab-only GGUFs.

They come from the llama-cpp-python 0.3.36 source distribution (``models/ggml-vocab-*.gguf`` under
``vendor/llama.cpp``), fetched once with pip into ``~/.cache/cove-test-models/llama-vocab``; only
the vocab files are kept. A harmony tokenizer (gpt-oss's channel markers as control tokens) is
built from the GPT-2 one with the ``gguf`` package, since no o200k vocabulary ships there.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import gguf

SDIST = "llama-cpp-python==0.3.36"
CACHE = Path.home() / ".cache" / "cove-test-models" / "llama-vocab"
VOCABS = ("qwen35", "qwen2", "deepseek-llm", "llama-spm", "llama-bpe", "gemma-4", "gpt-2", "command-r")
HARMONY_TOKENS = ("<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|call|>",
                  "<|constrain|>")


def vocab_path(name: str) -> Path:
    """The vocab-only GGUF of ``name`` (one of :data:`VOCABS`), fetched on first use."""
    target = CACHE / f"ggml-vocab-{name}.gguf"
    if not target.is_file():
        _fetch()
    return target


def _fetch() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               SDIST, "-d", tmp], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip download {SDIST} failed: {done.stderr.strip()[-400:]}")
        archive = next(Path(tmp).glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name.startswith("ggml-vocab-") and name.endswith(".gguf") and "/models/" in member.name:
                    source = tar.extractfile(member)
                    if source is not None:
                        partial = CACHE / (name + ".part")
                        partial.write_bytes(source.read())
                        partial.replace(CACHE / name)


def harmony_vocab_path() -> Path:
    """GPT-2's vocabulary with gpt-oss's harmony markers added as control tokens."""
    target = CACHE / "ggml-vocab-harmony.gguf"
    if target.is_file():
        return target
    reader = gguf.GGUFReader(vocab_path("gpt-2"))
    writer = gguf.GGUFWriter(str(target) + ".part", arch="gpt2")
    tokens: list[bytes] = []
    types: list[int] = []
    for field in reader.fields.values():
        if field.name in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
            continue
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        _copy_field(writer, field)
    tok_field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(tok_field.parts[i]) for i in tok_field.data]
    type_field = reader.fields.get("tokenizer.ggml.token_type")
    types = [int(type_field.parts[i][0]) for i in type_field.data] if type_field else [1] * len(tokens)
    tokens += [t.encode() for t in HARMONY_TOKENS]
    types += [int(gguf.TokenType.CONTROL)] * len(HARMONY_TOKENS)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    Path(str(target) + ".part").replace(target)
    return target


def _copy_field(writer: gguf.GGUFWriter, field: gguf.ReaderField) -> None:
    kind = field.types[0]
    if kind == gguf.GGUFValueType.ARRAY:
        inner = field.types[-1]
        if inner == gguf.GGUFValueType.STRING:
            writer.add_array(field.name, [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data])
        else:
            writer.add_array(field.name, [field.parts[i].tolist()[0] for i in field.data])
    elif kind == gguf.GGUFValueType.STRING:
        writer.add_string(field.name, bytes(field.parts[field.data[0]]).decode("utf-8", "replace"))
    else:
        writer.add_key_value(field.name, field.parts[field.data[0]].tolist()[0], kind)
