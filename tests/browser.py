"""Open a local file in Debian's Chromium (headless, driven by Playwright) the way a reviewer's browser would,
and record what went wrong: console errors, uncaught page errors, and every request the page made.

Playwright drives the system binary (/usr/bin/chromium) through `executable_path`: it never downloads a
browser. A missing Chromium, Playwright or Korean font fails the test with how to install it; it never skips.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "install Debian's chromium: make setup"


@dataclass
class Visit:
    """An open page and what it did since it started loading."""

    page: Page
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL asked for, the file itself included
    blocked: list[str] = field(default_factory=list)  # requests for anything but a file: URL (refused)

    def problems(self) -> list[str]:
        return [
            *(f"console error: {text}" for text in self.console_errors),
            *(f"page error: {text}" for text in self.page_errors),
            *(f"request to {url}" for url in self.blocked),
        ]

    def screenshot(self, *paths: Path) -> None:
        """The whole page (not just the viewport) as PNG, written to every path given."""
        image = self.page.screenshot(full_page=True, type="png")
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image)


def require_korean_font() -> None:
    """The reports are half Korean; without a Korean font Chromium draws boxes and the screenshot is unreadable."""
    fc_list = shutil.which("fc-list")
    listed = (
        subprocess.run([fc_list, ":lang=ko", "family"], capture_output=True, text=True, check=False)
        if fc_list
        else None
    )
    if listed is None or not listed.stdout.strip():
        pytest.fail("no Korean font for Chromium: install Debian's fonts-nanum (make setup)")


@contextmanager
def open_file(path: Path, *, width: int = 1280, height: int = 900) -> Iterator[Visit]:
    """`path` loaded in a fresh headless Chromium; the browser is closed on leaving, also on failure."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not in .venv (requirements/dev.txt); {INSTALL}")
    require_korean_font()
    url = path.resolve().as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            visit = Visit(page=page, url=url)
            page.on("console", lambda message: _console(visit, message.type, message.text))
            page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
            page.on("request", lambda request: visit.requests.append(request.url))

            def refuse_network(route: Route) -> None:
                # Only the file itself may load; anything else (http, https, ws…) is refused and recorded.
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    visit.blocked.append(route.request.url)
                    route.abort()

            context.route("**/*", refuse_network)
            page.goto(url, wait_until="load")
            yield visit
        finally:
            browser.close()


def _console(visit: Visit, kind: str, text: str) -> None:
    if kind == "error":
        visit.console_errors.append(text)
