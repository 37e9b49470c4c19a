"""Entry point: ``cove`` opens the window; ``cove SUBCOMMAND`` works without one.

``cove --self-test`` loads the starter model, generates a short answer and exits (no Qt, no
writes to the user's data). ``cove --probe-child ...`` is internal: in a frozen bundle it is how
the quarantine probe starts its child process (there is no ``python -m`` there).
"""

from __future__ import annotations

import argparse
import sys

from desktop import __version__


def build_parser() -> argparse.ArgumentParser:
    """The full command line."""
    # lazy: the probe's frozen child (main's first check) starts without the command line's modules
    from desktop.cli.main import add_commands

    parser = argparse.ArgumentParser(prog="cove", description="Private, offline chat with local language models.")
    parser.add_argument("--version", action="version", version=f"cove {__version__}")
    parser.add_argument("--basedir", help="keep all data under this folder instead of the user's data folder")
    parser.add_argument("--safe-mode", action="store_true", help="start without loading any model")
    parser.add_argument("--self-test", action="store_true",
                        help="load the starter model, generate a short answer, print one line and exit "
                             "(writes nothing to your data)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the window or a subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # lazy: start-up time; importing this module loads nothing else until main() runs
    from desktop.core.engine.probe import FROZEN_CHILD_FLAG, child_main

    if argv[:1] == [FROZEN_CHILD_FLAG]:  # before argparse and before anything imports Qt
        return child_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.self_test:
        # lazy: start-up time; only --self-test needs it
        from desktop.cli.self_test import run_self_test

        return run_self_test()
    if args.command:
        # lazy: as in build_parser (which has imported it by now)
        from desktop.cli.main import run

        return run(args)
    # lazy: the window's modules import Qt, which no command of the command line may load
    from desktop.app import run_gui

    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
