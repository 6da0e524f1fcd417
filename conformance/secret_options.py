"""Secrets for the operator commands (scripts/check_*.py): from the environment or a file, never from the
command line, where other users see them (`ps`, /proc, shell history), and never echoed in an error."""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn


class SecretFileError(ValueError):
    """A secret file that cannot be used; the message names the file, never what it holds."""


def read_secret_file(option: str, path: str) -> str:
    """The secret in `path`: one line of UTF-8 text, the trailing newline stripped."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SecretFileError(f"{option} {path}: cannot read the file ({reason})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{option} {path}: the file is not UTF-8 text") from None
    value = text.rstrip("\r\n")
    if not value.strip():
        raise SecretFileError(f"{option} {path}: the file is empty")
    if "\n" in value or "\r" in value:
        raise SecretFileError(f"{option} {path}: the file must hold the secret on one line")
    return value


class _RefusedOnCommandLine(argparse.Action):
    """The old option that took a secret as its value: refused, and the value is never echoed."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, env: str, file_option: str, **_: Any) -> None:
        self.env, self.file_option = env, file_option
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> NoReturn:
        parser.error(
            f"{option} is not accepted: a secret on the command line is visible to other users (ps, /proc, shell "
            f"history). Set {self.env} in the environment, or use {self.file_option} PATH"
        )


def secret_epilog(what: str, *, option: str, env: str) -> str:
    text = (
        f"{what} comes from ${env}, or from a file with --{option}-file PATH (one line; the trailing newline is "
        "stripped), e.g. a file only you can read or a secret mounted by the orchestrator. It is never taken on "
        f"the command line, where other users see it (ps): --{option} VALUE is refused with exit status 2, and "
        "so is a file that is missing, unreadable, empty or longer than one line. The value is never printed."
    )
    return textwrap.fill(text, width=110)


def add_secret_option(parser: argparse.ArgumentParser, what: str, *, option: str, env: str) -> None:
    """`--<option>-file PATH` (default `$<env>`), and `--<option>` refused: see `secret_from`."""
    parser.add_argument(
        f"--{option}-file",
        metavar="PATH",
        dest=f"{option.replace('-', '_')}_file",
        help=f"read {what} from PATH (default: ${env})",
    )
    parser.add_argument(f"--{option}", action=_RefusedOnCommandLine, env=env, file_option=f"--{option}-file")


def secret_from(parser: argparse.ArgumentParser, args: argparse.Namespace, *, option: str, env: str) -> str | None:
    """The secret from `--<option>-file` if given, else from `$<env>`; a bad file is a usage error (exit 2)."""
    path = getattr(args, f"{option.replace('-', '_')}_file")
    if path is None:
        return os.environ.get(env) or None
    try:
        return read_secret_file(f"--{option}-file", path)
    except SecretFileError as error:
        parser.error(str(error))


def parse_without_echo(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """`parse_args`, but an unknown argument is reported by its option name only: its value may be a secret
    typed by mistake (`--apikey VALUE`). Build the parser with allow_abbrev=False so that no abbreviation
    error echoes `--opt=VALUE` either."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        names = sorted({argument.split("=", 1)[0] for argument in unknown if argument.startswith("-")})
        parser.error(f"unrecognized arguments: {' '.join(names) or '(values)'} (values are not shown)")
    return args
