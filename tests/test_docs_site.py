"""The documentation site as a reader meets it: built with ``mkdocs build --strict``, served from
localhost, opened in Debian's chromium. Every page is visited through the site's own links;
every internal link must reach a page (and its ``#anchor`` an element on it), the search box must
find "padding", and no page may log a console error or fetch anything from another host (the
site works offline: no web fonts, no CDN).
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def served(site):
    """The built site on http://127.0.0.1:PORT/ (search needs http: its worker fetches the index)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Visit:
    """Pages opened one by one in one browser page, recording what a reader would not want."""

    def __init__(self, chromium, base: str) -> None:
        self.base = base
        self.page = chromium.new_page(viewport={"width": 1280, "height": 900})
        # Generous: CI's two cores run the whole suite beside this (search builds its index in
        # a worker, which a busy machine can hold up for seconds).
        self.page.set_default_timeout(90_000)
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"{self.page.url}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"{self.page.url}: {e}"))
        self.page.on("request", self._request)

    def _request(self, request) -> None:
        if not request.url.startswith((self.base, "data:", "blob:")):
            self.foreign.append(request.url)

    def open(self, url: str) -> int:
        response = self.page.goto(url, wait_until="load")
        return response.status if response is not None else 0


def test_every_page_link_search_and_console(chromium, served):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    visit = Visit(chromium, served)
    pages: dict[str, set[str]] = {}  # page URL → ids on it
    links: list[tuple[str, str, str]] = []  # (from page, target URL, fragment)
    queue = [served]
    while queue:
        url = queue.pop()
        if url in pages:
            continue
        status = visit.open(url)
        assert status == 200, (url, status)
        pages[url] = set(visit.page.eval_on_selector_all("[id]", "es => es.map(e => e.id)"))
        hrefs = visit.page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        for href in hrefs:
            target, fragment = urldefrag(href)
            if not target.startswith(served):
                continue  # another site (d2l.ai, mkdocs-material's home): not followed
            target = urljoin(target, ".") if target.endswith("index.html") else target
            links.append((url, target, fragment))
            if urlparse(target).path.endswith("/") and target not in pages:
                queue.append(target)
    # Every page of the nav was reached through links, and every link lands somewhere real.
    assert len(links) > 100, len(links)
    nav_pages = {p.stem for p in (REPO / "docs").glob("*.md")}
    reached = {urlparse(u).path.strip("/") or "index" for u in pages}
    assert nav_pages <= reached, nav_pages - reached
    for source, target, fragment in links:
        if target not in pages:
            assert visit.open(target) == 200, (source, target)
            continue
        if fragment:
            assert fragment in pages[target], f"{source} links to #{fragment}, not on {target}"

    # Search: type into the box, and a result about padding appears.
    visit.open(served)
    # Material builds its index in a worker and says "Initializing search" until it is ready;
    # a query typed before that is dropped, so wait for it, as a reader would, then type.
    visit.page.focus("input.md-search__input")
    visit.page.wait_for_function(
        "() => { const m = document.querySelector('.md-search-result__meta');"
        " return m && !/initializ/i.test(m.textContent); }")
    results = visit.page.locator(".md-search-result__item")
    for attempt in range(3):
        visit.page.fill("input.md-search__input", "")
        visit.page.type("input.md-search__input", "padding")  # key by key, as a reader types
        try:
            results.first.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:  # type again; after the last try the assertion below says so
            continue
    assert results.count() >= 1
    assert "padding" in visit.page.inner_text(".md-search-result").lower()

    assert visit.errors == [], visit.errors
    assert visit.foreign == [], visit.foreign
    visit.page.close()
