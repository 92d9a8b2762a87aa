"""Screenshots of the curator's pages, as a new user sees them after `make demo` and `make ui`.

    python -m docs.screenshots [--out docs/screenshots]          (or: make screenshots)

Generates the demo corpus in a temporary folder, settles it in-process (the same automation the
daemon runs), serves it with `dagster dev` on 127.0.0.1 and photographs each page in headless
Chromium with the same helpers the browser test uses (curation_assets_tests/test_browser.py), so
the pictures show what the test checks. Needs Debian's chromium and playwright (make env).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from curation_assets.local_run import local_instance_env
from curation_assets_tests.test_browser import REPO, browser_missing, chromium_page, dagster_dev, open_asset

# (file, asset page, metadata entry to scroll to, whether the entry opens in Dagster's dialog)
SHOTS = (
    ("score_analysis.png", "caption/score_analysis", "clip_similarity", False),
    ("funnel.png", "caption/score_analysis", "funnel", False),
    ("filtered_near_the_bounds.png", "caption/filtered", "near the bounds", True),
    ("filtered_duplicate_groups.png", "caption/filtered", "duplicate groups", True),
)


def settle_demo(root: Path, home: Path, recipe: Path) -> None:
    run = {"env": local_instance_env(root, home, recipe), "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([sys.executable, "-m", "curation_assets.demo", "--root", str(root)], **run)
    subprocess.run([sys.executable, "-m", "curation_assets.local_run"], **run)


def shoot(page, base_url: str, out: Path) -> list[Path]:
    written = []
    for name, asset, label, dialog in SHOTS:
        open_asset(page, base_url, asset, [label])
        cell = page.locator("tr", has=page.locator("td", has_text=label)).first
        cell.scroll_into_view_if_needed()
        if dialog and cell.get_by_text("Show Markdown").count():
            cell.get_by_text("Show Markdown").click()
            shown = page.get_by_role("dialog")
            shown.locator("img").first.wait_for()
            page.wait_for_function("() => [...document.querySelectorAll('[role=dialog] img')].every((i) => i.complete)")
            shown.screenshot(path=str(out / name))
            page.keyboard.press("Escape")
        else:
            page.screenshot(path=str(out / name))
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        print(f"cannot take screenshots: {missing}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    recipe = REPO / "curation_assets" / "recipes" / "smoke.yaml"
    with tempfile.TemporaryDirectory(prefix="screenshots-") as folder:
        root, home = Path(folder) / "data", Path(folder) / "dagster_home"
        home.mkdir()
        print("settling the demo (a few minutes)...")
        settle_demo(root, home, recipe)
        with dagster_dev(root, home, recipe, Path(folder) / "dagster_dev.log") as url, chromium_page() as page:
            for path in shoot(page, url, args.out):
                print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
