"""The pages a curator opens first, as a browser shows them: `dagster dev` on 127.0.0.1 over a settled
demo, opened in headless Chromium (Debian's chromium, driven by Playwright).

Asserts that the metadata entries render: on caption/score_analysis one entry per score with its
histogram (an inline SVG that the browser decoded) and its bounds drawn on it and said in words
("drops"), the filter funnel and the quarantine funnel, all without a click; on caption/filtered the
samples near each bound and the duplicate groups, whose thumbnails open behind one "[Show Markdown]"
click (Dagster shows markdown of 1,000 characters or more only in a dialog). Skips, saying why,
where no browser can be driven.

The helpers here also drive docs/screenshots.py, so the screenshots show what this test checks.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from curation_assets import registry

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# Chromium phones home at start (updates, sync, QUIC probes); on a closed network those calls hang or
# fail noisily, so they are all turned off. --no-sandbox: CI containers run as root.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SERVER_START_SECONDS = 90
PAGE_SECONDS = 30

# The metadata entries each page must show, by the names agreed with the Dagster layer.
SCORES = [column for columns in registry.analysed_columns(registry.CAPTION).values() for column in columns]
ANALYSIS_ENTRIES = [*SCORES, "funnel", "quarantined"]
# caption/filtered: the samples either side of each bound, and each duplicate group with the member kept.
PICTURE_ENTRIES = ["near the bounds", "duplicate groups"]
# Entries the pages had before this report; seeing one means the page has loaded its metadata.
LOADED_MARKERS = ["pairs", "quantiles", "histograms", "duplicate_groups", "dagster/row_count"]


def chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    found = [explicit] if explicit else [*CHROMIUM_CANDIDATES, shutil.which("chromium") or ""]
    return next((path for path in found if path and Path(path).is_file()), None)


def browser_missing() -> str | None:
    """Why no browser can be driven here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; its driver ships with the package)"
    if chromium_path() is None:
        return "no Chromium found (apt-get install -y chromium, or set CHROMIUM to its path)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_dev(root: Path, home: Path, recipe: Path, log_path: Path) -> Iterator[str]:
    """`dagster dev` (webserver and daemon, what `make ui` runs) over this data root and instance;
    yields its base URL once the webserver answers, and stops the whole process group after."""
    from curation_assets.local_run import local_instance_env

    port = free_port()
    env = local_instance_env(root, home, recipe)
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_server(url, server, log_path)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # its own session: the webserver, daemon and code servers
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _wait_for_server(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"dagster dev did not answer within {SERVER_START_SECONDS}s:\n{log_path.read_text()[-3000:]}")


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Debian Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium_path(),
            args=list(CHROMIUM_ARGS),
            headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(PAGE_SECONDS * 1000)
            yield page
        finally:
            context.close()


# Every metadata row of the asset page: key -> what its value cell shows. Dagster's metadata table
# has the key in the first cell and the value in the last.
_READ_ENTRIES = """
(labels) => {
  const found = {};
  for (const row of document.querySelectorAll('tr')) {
    const cells = row.querySelectorAll(':scope > td');
    if (cells.length < 2) continue;
    const key = cells[0].innerText.trim();
    if (!labels.includes(key) || key in found) continue;
    const value = cells[cells.length - 1];
    found[key] = {
      text: value.innerText,
      dialog: value.innerText.includes('Show Markdown'),
      images: [...value.querySelectorAll('img')].map((img) => ({
        kind: (img.getAttribute('src') || '').slice(0, 22),
        width: img.naturalWidth,
        bounds: (img.getAttribute('src') || '').includes('stroke-dasharray'),
      })),
    };
  }
  return found;
}
"""


@dataclass
class PageCheck:
    """What one asset page showed, and what it lacked (in words, for the assertion message)."""

    asset: str
    entries: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def require(self, label: str, condition: bool, why: str) -> None:
        if not condition:
            self.problems.append(f"{self.asset} `{label}`: {why}")


def open_asset(page, base_url: str, asset: str, labels: list[str]) -> PageCheck:
    """Open an asset's page and read its metadata entries once the table has loaded and every image
    in it has decoded."""
    page.goto(f"{base_url}/assets/{asset}")
    wanted = [*labels, *LOADED_MARKERS]
    page.wait_for_function(
        "(labels) => [...document.querySelectorAll('tr > td:first-child')].some("
        "(cell) => labels.includes(cell.innerText.trim()))",
        arg=wanted,
    )
    page.wait_for_function("() => [...document.images].every((img) => img.complete)")
    return PageCheck(asset, page.evaluate(_READ_ENTRIES, labels))


def check_analysis(page, base_url: str) -> PageCheck:
    check = open_asset(page, base_url, "caption/score_analysis", ANALYSIS_ENTRIES)
    for label in ANALYSIS_ENTRIES:
        entry = check.entries.get(label)
        check.require(label, entry is not None, "no such metadata entry")
        if entry is None:
            continue
        check.require(label, not entry["dialog"], "only behind [Show Markdown]: keep it under 1,000 characters")
    for label in SCORES:
        entry = check.entries.get(label)
        if entry is None or entry["dialog"]:
            continue
        svgs = [image for image in entry["images"] if image["kind"].startswith("data:image/svg+xml")]
        check.require(label, bool(svgs) and all(image["width"] > 0 for image in svgs), "no rendered histogram")
    # The smoke recipe bounds clip_similarity (p10), so its histogram must carry a bound and a count.
    similarity = check.entries.get("clip_similarity")
    if similarity is not None and not similarity["dialog"]:
        check.require("clip_similarity", any(image["bounds"] for image in similarity["images"]), "no bound drawn")
        check.require("clip_similarity", "drops" in similarity["text"], "no 'drops N (x %)' line")
    funnel = check.entries.get("funnel")
    if funnel is not None:
        check.require("funnel", "kept" in funnel["text"] and "dedup" in funnel["text"], "no in -> rules -> kept table")
    return check


def check_pictures(page, base_url: str, asset: str, label: str) -> PageCheck:
    """A metadata entry holding composed thumbnails must render them (inline, or in Dagster's dialog
    one click away: PNGs are kilobytes, over its inline limit)."""
    check = open_asset(page, base_url, asset, [label])
    entry = check.entries.get(label)
    check.require(label, entry is not None, "no such metadata entry")
    if entry is None:
        return check
    images = entry["images"]
    if entry["dialog"]:
        row = page.locator("tr", has=page.locator("td", has_text=label)).filter(has_text="Show Markdown").first
        row.get_by_text("Show Markdown").click()
        dialog = page.get_by_role("dialog")
        dialog.locator("img").first.wait_for()
        page.wait_for_function("() => [...document.querySelectorAll('[role=dialog] img')].every((i) => i.complete)")
        images = dialog.locator("img").evaluate_all(
            "(imgs) => imgs.map((img) => ({kind: img.getAttribute('src').slice(0, 22), width: img.naturalWidth}))"
        )
        check.entries[label]["dialog_text"] = dialog.inner_text()
        page.keyboard.press("Escape")
    pngs = [image for image in images if image["kind"].startswith("data:image/png")]
    check.require(label, bool(pngs) and all(image["width"] > 0 for image in pngs), "no rendered thumbnails")
    return check


def check_timeline(page, base_url: str) -> PageCheck:
    """The Overview timeline lists the runs that settled the demo (it leaves out runs without a code
    location origin, which in-process runs lacked)."""
    check = PageCheck("overview timeline")
    page.goto(f"{base_url}/overview/activity/timeline")
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        page.get_by_text("Jobless asset materializations").first.wait_for(timeout=PAGE_SECONDS * 1000)
    except PageTimeout:
        pass  # reported below, with what the page said instead
    text = page.inner_text("body")
    check.require(
        "runs", "curation_assets" in text and "No runs" not in text, f"no runs on the timeline: {text[:300]!r}"
    )
    return check


pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@pytest.fixture
def served_demo(settled_template, tmp_path):
    """`dagster dev` over a private copy of the settled demo (3 caption shards, smoke models)."""
    root, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(settled_template[0], root, symlinks=True)
    shutil.copytree(settled_template[1], home)
    recipe = REPO / "curation_assets" / "recipes" / "smoke.yaml"
    with dagster_dev(root, home, recipe, tmp_path / "dagster_dev.log") as url:
        yield url


def test_curator_pages_render_histograms_bounds_and_thumbnails(served_demo, capsys, tmp_path):
    started = time.monotonic()
    with chromium_page() as page:
        checks = [check_analysis(page, served_demo)]
        page.screenshot(path=str(tmp_path / "score_analysis.png"), full_page=True)
        checks += [check_pictures(page, served_demo, "caption/filtered", label) for label in PICTURE_ENTRIES]
        checks.append(check_timeline(page, served_demo))
    seconds = time.monotonic() - started
    with capsys.disabled():  # the issue asks for under a minute: reported, not enforced by a timed test
        print(f"\nbrowser part: {seconds:.1f}s")
    problems = [problem for check in checks for problem in check.problems]
    assert not problems, (
        "the curator pages lack what they must show:\n  " + "\n  ".join(problems) + f"\n(the page: {tmp_path})"
    )
