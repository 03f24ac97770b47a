"""Screenshots of an HTML report for the docs (headless Debian Chromium through Playwright).

    python scripts/screenshot_report.py RUN/report/report.html docs/img

Writes ``report_summary.png`` (the top of the page), ``report_mi.png`` (the mutual
information section) and ``report_traversal.png`` (the first traversal).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

SECTIONS = {"report_mi.png": "#mi", "report_traversal.png": "#traversals"}


def main(report: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(report.resolve().as_uri())
        page.screenshot(path=str(out_dir / "report_summary.png"))
        for name, selector in SECTIONS.items():
            element = page.query_selector(selector)
            if element is None:
                raise SystemExit(f"{report}: no section {selector}")
            box = element.bounding_box()  # page coordinates: the page is not scrolled
            page.screenshot(
                path=str(out_dir / name),
                full_page=True,
                clip={"x": 0, "y": box["y"], "width": 1280, "height": min(box["height"], 1400)},
            )
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
