"""Remake docs/assets/report-alexnet.png, the README's picture: the real `shapecalc report
alexnet`, opened in Debian's chromium (headless) with AlexNet's first convolution selected.

Run: ``python scripts/report_picture.py`` (needs Graphviz's dot, chromium and playwright).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "assets" / "report-alexnet.png"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "alexnet.html"
        subprocess.run([sys.executable, "-m", "shapecalc", "report", "alexnet", "-o", str(page_path)],
                       check=True, cwd=REPO)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(page_path.as_uri())
            page.click('tr[data-row="0"]')
            page.screenshot(path=str(OUT))
            browser.close()
    print(f"{OUT.relative_to(REPO)}: {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
