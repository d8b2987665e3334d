"""Render an HTML report in headless Chromium and check that the page is not blank.

    python bench/screenshot_report.py RUN_DIR/report.html [--png OUT.png]

Checks: the DOM Chromium built holds the report's tables and inline images, and the screenshot
is not one flat colour. Prints the screenshot path; exits 1 if a check fails, 2 without Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _chromium(browser: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def distinct_colours(png: Path) -> int:
    """How many colours the screenshot holds (1 for a blank page)."""
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(png)[..., :3].reshape(-1, 3)
    return len(np.unique((pixels * 255).astype(np.uint8), axis=0))


def check(html: Path, png: Path, browser: str) -> list[str]:
    """Problems found; empty when the page renders with its tables and figures."""
    url = html.resolve().as_uri()
    dom = _chromium(browser, "--dump-dom", url).stdout
    problems = []
    if dom.count("<table") < 2:
        problems.append(f"DOM holds {dom.count('<table')} tables")
    if dom.count('src="data:image/png;base64,') < 1:
        problems.append("DOM holds no inline figure")
    _chromium(browser, f"--screenshot={png}", "--window-size=1400,2000", url)
    if not png.is_file():
        problems.append("Chromium wrote no screenshot")
    elif distinct_colours(png) < 50:
        problems.append(f"screenshot {png} is nearly uniform: a blank page")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--png", type=Path, default=None, help="default: beside the HTML")
    args = parser.parse_args()
    browser = find_browser()
    if browser is None:
        print("no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    png = args.png or args.html.with_suffix(".png")
    problems = check(args.html, png, browser)
    for line in problems:
        print(f"FAIL {line}", file=sys.stderr)
    print(png)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
