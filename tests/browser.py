"""Helpers for driving the studio in headless Chromium (Playwright, Debian's chromium)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "docs" / "screenshots"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed; under CI=true the browser journey must run")
        pytest.skip("chromium is not installed (install it with `make browser`)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_studio(db: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Start `streamlit run app.py` on a free loopback port; yield its URL; stop it afterwards."""
    port = free_port()
    env = dict(os.environ, STUDIO_DB=str(db), **(extra_env or {}))
    log = open(db.parent / f"server-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("studio did not start: " + (db.parent / f"server-{port}.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def launch_chromium(path: str) -> Iterator:
    """Headless Chromium through Playwright; closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


# Steps a user takes, shared by the browser tests and bench/bench_walk.py.
def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(600)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(400)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=120_000)
    page.wait_for_timeout(200)


def go(page, url: str, path: str) -> None:
    page.goto(f"{url}/{path}")
    page.get_by_role("heading").first.wait_for(timeout=60_000)
    settle(page)


def nav(page, title: str) -> None:
    """Move between pages with the sidebar, as a user does (the session, and its choices, stay)."""
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title if title != "Home" else "Tuning Studio").first.wait_for()
    settle(page)


def click(page, name: str, *, exact: bool = True) -> None:
    try:
        page.get_by_role("button", name=name, exact=exact).filter(visible=True).first.click()
    except Exception:
        shot(page, "failed-click")
        raise
    settle(page)


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    settle(page)


def choose(page, label: str, option: str) -> None:
    box = page.get_by_label(label, exact=True).filter(visible=True).first
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).filter(visible=True).first.click()
    settle(page)



class Guard:
    """Records every request that leaves loopback and every script dialog (XSS would raise one)."""

    def __init__(self) -> None:
        self.outside: list[str] = []
        self.dialogs: list[str] = []

    def attach(self, page) -> None:  # noqa: ANN001 (playwright Page)
        page.on("request", self._request)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _request(self, request) -> None:  # noqa: ANN001
        parsed = urlparse(request.url)
        if parsed.scheme in ("data", "blob", "about", "file"):
            return
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            self.outside.append(request.url)


def vote(page, verdict: str) -> None:
    """Cast one blind verdict on the Rate page ("A is better", "Tie", ...) and wait until it is in:
    the "N of M rated by you" counter moves mid-run and the run then goes on (the next pair, or the
    reveal); clicking before it ends could hit a stale button that vanishes (CI, stop 29)."""
    before = page.get_by_text(re.compile(r"\d+ of \d+ rated by you")).first.inner_text()
    click(page, verdict, exact=False)
    page.wait_for_function(
        "before => ![...document.querySelectorAll('p, div')].some(e => e.innerText === before)",
        arg=before, timeout=60_000)
    settle(page)


def next_pair_or_done(page) -> bool:
    """Wait for the next blind pair or the end of the rater's session; True when the session is complete.
    Under load a rerun can lag behind the settle check, so wait for either state."""
    done = page.get_by_text("Your session is complete")
    done.or_(page.get_by_role("button", name=re.compile("A is better"))).first.wait_for()
    return bool(done.count())


def anonymise_every_value(page, rounds: int) -> None:
    """On the PII check page's review by value: anonymise value after value (each click reruns the
    page) until none is left, then wait for the empty list."""
    for _ in range(rounds):
        buttons = page.get_by_role("button", name=re.compile(r"^Anonymise in \d+ example")).filter(visible=True)
        if not buttons.count():
            break
        buttons.first.click()
        settle(page)
    page.get_by_text("0 distinct value(s), 0 occurrence(s).").wait_for()
