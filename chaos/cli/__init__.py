"""`python -m chaos`: the game-day command line.

Each command group lives in its own module with a `register(subcommands)` function that adds its parser
and sets `handler` (a function taking the parsed arguments and returning an exit code). Adding a command
(`list`, `run`, ...) means one module and one line in COMMANDS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from types import ModuleType

from chaos.cli import deployment, drills, export, stack, targets
from chaos.invocation import program_name

Handler = Callable[[argparse.Namespace], int]

# Command modules, in the order `--help` lists them.
COMMANDS: tuple[ModuleType, ...] = (drills, export, targets, stack, deployment)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name("chaos"),
        description="Game-day tooling: the stack (PostgreSQL, Redis, fault proxy, service) and drills.",
    )
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
