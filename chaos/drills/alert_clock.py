"""The drill clock of the alert rules: the throwaway drills' variant of the production rules, derived by one
transform.

`service/alerts/events-api.rules.yml` holds the rules as production runs them (15 s evaluation, `for:` in
minutes, one-minute and longer windows). Drills last seconds, so the throwaway Prometheus evaluates
`events-api.drill.rules.yml` instead: the same file with every duration — group `interval`, `for:`,
`keep_firing_for:`, and in PromQL every range-vector window `[1m]`, subquery `[1h:5m]` and `offset 5m` —
divided by `DRILL_FACTOR`, and nothing else changed (names, labels, annotations, comments and thresholds are
the production ones, so comments and annotations speak of production time). The promtool tests are derived
the same way (`evaluation_interval`, `interval`, `eval_time` divided; input samples unchanged, so each sample
stands for one production scrape), so one set of scenarios proves both files. The Prometheus that runs the
drill variant scrapes every `PRODUCTION_SCRAPE_INTERVAL / DRILL_FACTOR`, so the whole detection pipeline
(scrape, evaluation, `for:`) runs `DRILL_FACTOR` times faster and an alert's time to detection on the drill
clock, multiplied by the factor, is its production-equivalent. What does not scale is the service's own check
timeouts (HEALTH_CHECK_TIMEOUT_S), so for slow or hung dependencies that figure is an upper estimate.

    python -m chaos.drills.alert_clock --write   # regenerate both drill files
    python -m chaos.drills.alert_clock --check   # exit 1 when a committed drill file is not what this generates
    python -m chaos.drills.alert_clock > service/alerts/events-api.drill.rules.yml   # the rules on stdout
    python -m chaos.drills.alert_clock --tests   # the promtool tests on stdout

A duration that the factor does not divide into whole milliseconds is refused (`ValueError`): Prometheus
durations have millisecond resolution, and rounding would break "divided by one factor".
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ALERTS = Path(__file__).resolve().parents[2] / "service" / "alerts"
PRODUCTION_RULES = ALERTS / "events-api.rules.yml"
PRODUCTION_TESTS = ALERTS / "events-api.rules.test.yml"
DRILL_RULES = ALERTS / "events-api.drill.rules.yml"
DRILL_TESTS = ALERTS / "events-api.drill.rules.test.yml"

# 20: the production evaluation and scrape interval (15 s) becomes the drill's 750 ms; every `for:` in whole
# minutes becomes a multiple of 3 s, short enough for the engine's alert timeout (chaos.drills.engine
# .ALERT_TIMEOUT_S); a one-minute window becomes 3 s, still four scrapes, as in production. Not higher: a scrape
# waits for the readiness round, which a hung dependency stretches to the service's 500 ms check timeout (it does
# not scale), and the scrape timeout must stay below the interval and above that (chaos.drills.prometheus).
# Each `for:` is the fixed part of a drill's time under fault, so the factor sets how long the suite runs.
DRILL_FACTOR = 20
PRODUCTION_SCRAPE_INTERVAL = "15s"  # what a deployment's Prometheus scrapes at (docker-compose.chaos.yml)
FACTOR_MARK = "drill-clock-factor:"  # the header line that names the factor a rules file runs at

_UNITS_MS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_SPAN = r"(?:\d+(?:ms|[smhdwy]))+"
# A range window or subquery: `[5m]`, `[1h:5m]`, `[1h:]`; an offset: `offset 5m`, `offset -5m`.
_RANGE = re.compile(rf"\[(\s*)({_SPAN})(\s*)(?::(\s*)({_SPAN})?(\s*))?\]")
_OFFSET = re.compile(rf"\b(offset\s+-?)({_SPAN})\b")
# YAML keys whose value is one duration: in rules files and in promtool test files.
DURATION_KEYS = ("interval", "for", "keep_firing_for", "evaluation_interval", "eval_time")
_KEY_LINE = re.compile(rf"^(\s*(?:-\s+)?(?:{'|'.join(DURATION_KEYS)})\s*:\s*)(['\"]?)([^'\"\s#]+)\2(\s*)$")
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')  # PromQL label values: never durations


def parse_duration(text: str) -> int:
    """A Prometheus duration (`1m30s`, `500ms`, `0s`) in milliseconds."""
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(value) * unit for value, (_, unit) in zip(match.groups(), _UNITS_MS, strict=True) if value)


def format_duration(ms: int) -> str:
    """Milliseconds as Prometheus writes a duration: largest units first (`1m30s`, `1s500ms`, `0s`)."""
    if ms < 0:
        raise ValueError(f"negative duration: {ms} ms")
    if ms == 0:
        return "0s"
    parts = []
    for name, unit in _UNITS_MS:
        count, ms = divmod(ms, unit)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)


def divide(duration: str, factor: int) -> str:
    """`duration` divided by `factor`; refused when the result is not a whole number of milliseconds."""
    if factor < 1:
        raise ValueError(f"the drill clock factor must be a positive integer, not {factor}")
    ms = parse_duration(duration)
    if ms % factor:
        raise ValueError(
            f"{duration} / {factor} = {ms / factor:g} ms is not a whole number of milliseconds, which a Prometheus "
            "duration cannot express: choose a factor that divides every production duration"
        )
    return format_duration(ms // factor)


def transform_promql(expression: str, factor: int) -> str:
    """Every range window, subquery range/step and offset in `expression` divided by `factor`; label values
    (double-quoted) untouched."""

    def ranges(match: re.Match[str]) -> str:
        pre, window, post, colon_pre, step, step_post = match.groups()
        text = f"[{pre}{divide(window, factor)}{post}"
        if colon_pre is not None:
            text += f":{colon_pre}{divide(step, factor) if step else ''}{step_post or ''}"
        return text + "]"

    def outside_strings(code: str) -> str:
        code = _RANGE.sub(ranges, code)
        return _OFFSET.sub(lambda m: m.group(1) + divide(m.group(2), factor), code)

    pieces: list[str] = []
    position = 0
    for literal in _DOUBLE_QUOTED.finditer(expression):
        pieces += [outside_strings(expression[position : literal.start()]), literal.group(0)]
        position = literal.end()
    pieces.append(outside_strings(expression[position:]))
    return "".join(pieces)


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a YAML line: a comment starts at a `#` that begins the line or follows a space, outside
    a quoted YAML scalar."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"" and line[:index].rstrip()[-1:] in ("", ":", "-", "[", "{", ","):
            quote = char  # a quoted scalar; a quote inside a plain scalar (runbook's) is just a character
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index], line[index:]
    return line, ""


def transform_text(text: str, factor: int, *, renames: dict[str, str] | None = None) -> str:
    """The drill variant of a rules or promtool test file's text: durations divided, comments kept as they are,
    `renames` applied to `rule_files` entries."""
    out: list[str] = []
    in_rule_files = False
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        code, comment = _split_comment(body)
        if re.match(r"^\S", code):
            in_rule_files = code.startswith("rule_files:")
        key = _KEY_LINE.match(code)
        if key is not None:
            prefix, quote, value, trailing = key.groups()
            code = f"{prefix}{quote}{divide(value, factor)}{quote}{trailing}"
        elif in_rule_files and renames and (entry := re.match(r"^(\s*-\s+)(\S+)(\s*)$", code)):
            code = entry.group(1) + renames.get(entry.group(2), entry.group(2)) + entry.group(3)
        else:
            code = transform_promql(code, factor)
        out.append(code + comment + ending)
    return "".join(out)


def _header(source: Path, factor: int, what: str) -> str:
    return (
        f"# GENERATED from service/alerts/{source.name} by `python -m chaos.drills.alert_clock --write`"
        " — do not edit.\n"
        f"# {what} on the drill clock: every duration of that file divided by {factor} (group intervals, `for:`,\n"
        "# range windows, subqueries, offsets; in tests evaluation_interval, interval, eval_time), nothing else\n"
        "# changed: names, labels, annotations, thresholds and the comments below are the production ones, so\n"
        "# comments and annotations speak of production time (chaos/drills/alert_clock.py says why).\n"
        f"# {FACTOR_MARK} {factor}\n"
    )


def drill_rules(factor: int = DRILL_FACTOR) -> str:
    return _header(PRODUCTION_RULES, factor, "The alert rules") + transform_text(
        PRODUCTION_RULES.read_text(encoding="utf-8"), factor
    )


def drill_tests(factor: int = DRILL_FACTOR) -> str:
    renames = {PRODUCTION_RULES.name: DRILL_RULES.name}
    return _header(PRODUCTION_TESTS, factor, "The promtool tests") + transform_text(
        PRODUCTION_TESTS.read_text(encoding="utf-8"), factor, renames=renames
    )


def clock_factor(rules: Path) -> int:
    """The factor a rules file runs at: its header's `drill-clock-factor: N`, or 1 (production time)."""
    for line in rules.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if FACTOR_MARK in line:
            return int(line.split(FACTOR_MARK, 1)[1].strip())
    return 1


# -- an independent check of the transform: parse both files, and hold every value against its production one --
# A duration-looking token: not inside a name (`rate5m`, `latency_p95:1m`) or a number (`0.4`), except a subquery's
# step (`[1h:5m]`), which follows a colon and ends the brackets.
_ANY_DURATION = re.compile(rf"(?<![\w.:]){_SPAN}(?!\w)|(?<=:){_SPAN}(?=\s*\])")


@dataclass(frozen=True)
class Mismatch:
    path: str
    production: object
    drill: object


def only_durations_divided(
    production: str, drill: str, factor: int, *, renames: dict[str, str] | None = None
) -> list[Mismatch]:
    """Where the parsed `drill` file differs from the parsed `production` one other than by its durations
    divided by `factor`: at duration keys the value must be the production one divided; in every other string,
    each duration-looking token (`5m`, `1h30m`, not `rate5m`, `p95:1m` or `0.4`) must be the production one divided and
    the rest must be equal; everything else equal. An empty list is a faithful variant."""
    found: list[Mismatch] = []
    renames = renames or {}

    def walk(prod: object, dr: object, path: str, key: str | None) -> None:
        if isinstance(prod, dict) and isinstance(dr, dict):
            if set(prod) != set(dr):
                found.append(Mismatch(path, sorted(map(str, prod)), sorted(map(str, dr))))
                return
            for name, value in prod.items():
                walk(value, dr[name], f"{path}.{name}", str(name))
        elif isinstance(prod, list) and isinstance(dr, list):
            if len(prod) != len(dr):
                found.append(Mismatch(path, len(prod), len(dr)))
                return
            for index, (p, d) in enumerate(zip(prod, dr, strict=True)):
                walk(p, d, f"{path}[{index}]", key)
        elif key in DURATION_KEYS:
            try:
                ok = divide(str(prod), factor) == str(dr)
            except ValueError:
                ok = False
            if not ok:
                found.append(Mismatch(path, prod, dr))
        elif key == "rule_files":
            if renames.get(str(prod), prod) != dr:
                found.append(Mismatch(path, prod, dr))
        elif isinstance(prod, str) and isinstance(dr, str):
            prod_tokens, dr_tokens = _ANY_DURATION.findall(prod), _ANY_DURATION.findall(dr)
            same_shape = _ANY_DURATION.sub("<d>", prod) == _ANY_DURATION.sub("<d>", dr)
            try:
                divided = [divide(t, factor) for t in prod_tokens] == dr_tokens
            except ValueError:
                divided = False
            if not (same_shape and divided):
                found.append(Mismatch(path, prod, dr))
        elif prod != dr:
            found.append(Mismatch(path, prod, dr))

    parsed: tuple[Any, Any] = (yaml.safe_load(production), yaml.safe_load(drill))
    walk(parsed[0], parsed[1], "$", None)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.drills.alert_clock",
        description="Generate the drill-clock variant of the alert rules and their promtool tests.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {DRILL_RULES.name} and {DRILL_TESTS.name}")
    action.add_argument("--check", action="store_true", help="exit 1 when a committed drill file differs")
    action.add_argument("--tests", action="store_true", help="print the drill promtool tests instead of the rules")
    args = parser.parse_args(argv)
    generated = {DRILL_RULES: drill_rules(), DRILL_TESTS: drill_tests()}
    if args.write:
        for path, text in generated.items():
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        return 0
    if args.check:
        stale = [p for p, text in generated.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path} is not what the generator writes: python -m chaos.drills.alert_clock --write")
        return 1 if stale else 0
    sys.stdout.write(generated[DRILL_TESTS if args.tests else DRILL_RULES])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
