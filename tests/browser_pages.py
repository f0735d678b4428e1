"""Open a page in Chromium offline and record every request and script error (for the diff and index pages)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import CHROMIUM, require_browser

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def visit(path: Path, check: Callable[[Any], None]) -> tuple[list[str], list[str]]:
    """Load ``path``, run ``check(page)``, and return (requested URLs, errors)."""
    require_browser()
    from playwright.sync_api import sync_playwright
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda req: requests.append(req.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(path.as_uri())
            check(page)
        finally:
            browser.close()
    return requests, errors
