"""Entry point: ``cove`` opens the window; ``cove SUBCOMMAND`` works without one."""

from __future__ import annotations

import argparse
import sys

from desktop import __version__


def build_parser() -> argparse.ArgumentParser:
    """The full command line."""
    from desktop.cli import add_commands

    parser = argparse.ArgumentParser(prog="cove", description="Private, offline chat with local language models.")
    parser.add_argument("--version", action="version", version=f"cove {__version__}")
    parser.add_argument("--basedir", help="keep all data under this folder instead of the user's data folder")
    parser.add_argument("--safe-mode", action="store_true", help="start without loading any model")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the window or a subcommand."""
    args = build_parser().parse_args(argv)
    if args.command:
        from desktop.cli import run

        return run(args)
    from desktop.app import run_gui

    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
