"""``cove engines``: the remote engines (OpenAI-compatible servers) whose models ``cove chat
--engine NAME --model M`` and the window can use. ``add`` reads the engine's model list first and
refuses one that does not answer; API keys go to the keyring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from desktop.cli.output import fail
from desktop.core.remote.engine_config import (
    EngineConfig,
    check_name,
    key_name,
    load_engines,
    normalize_base_url,
    save_engines,
)
from desktop.core.remote.remote_models import list_all, list_engine
from desktop.core.system.paths import AppPaths
from desktop.core.system.secrets import SecretStore


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cove engines [list]``."""
    parser.add_argument("--json", action="store_true", help="print the engines and their models as JSON")


def add_add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cove engines add``."""
    parser.add_argument("name", help="a short name (letters, digits, . _ -)")
    parser.add_argument("url", help="the engine's OpenAI-compatible base URL, e.g. https://gpu.example.org:8000/v1")
    parser.add_argument("--api-key-file", type=Path, help="a file whose first line is the engine's API key")
    parser.add_argument("--ca-file", type=Path, help="the CA certificate (PEM) of a private TLS authority")


def add_rm_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cove engines rm``."""
    parser.add_argument("name")


def cmd_list(args: argparse.Namespace, paths: AppPaths) -> int:
    """List each engine with its models, or why they could not be read."""
    listings = list_all(paths, SecretStore())
    if getattr(args, "json", False):
        print(json.dumps([{"name": x.engine.name, "url": x.engine.url, "error": x.error,
                           "models": [m.key.split("/", 1)[1] for m in x.models]} for x in listings], indent=2))
        return 0
    if not listings:
        print("No engines. Add one: cove engines add NAME URL [--api-key-file F]")
    for listing in listings:
        models = ", ".join(m.key.split("/", 1)[1] for m in listing.models) or "no models"
        print(f"{listing.engine.name}  {listing.engine.url}  {listing.error or models}")
    return 0


def cmd_add(args: argparse.Namespace, paths: AppPaths) -> int:
    """Add an engine once it answered its model list."""
    try:
        name, url = check_name(args.name), normalize_base_url(args.url)
        key = args.api_key_file.read_text(encoding="utf-8").strip().splitlines()[0] if args.api_key_file else ""
    except (ValueError, OSError, IndexError) as exc:
        return fail(str(exc) if not isinstance(exc, IndexError) else f"{args.api_key_file} is empty")
    engines = load_engines(paths)
    if any(e.name == name for e in engines):
        return fail(f"there is already an engine called '{name}' (cove engines rm {name} first)")
    config = EngineConfig(name, url, str(args.ca_file or ""), bool(key))
    listing = list_engine(config, key or None)
    if listing.error:
        return fail(listing.error)
    secrets = SecretStore()
    if key and not secrets.set(key_name(name), key):
        return fail("no keyring is available to keep the API key: Cove does not write keys to files")
    save_engines(paths, [*engines, config])
    print(f"Added '{name}' ({url}): {len(listing.models)} models: "
          + ", ".join(m.key.split("/", 1)[1] for m in listing.models))
    return 0


def cmd_rm(args: argparse.Namespace, paths: AppPaths) -> int:
    """Forget an engine and its key."""
    engines = load_engines(paths)
    if not any(e.name == args.name for e in engines):
        return fail(f"there is no engine called '{args.name}'")
    save_engines(paths, [e for e in engines if e.name != args.name])
    SecretStore().delete(key_name(args.name))
    print(f"Removed '{args.name}'.")
    return 0
