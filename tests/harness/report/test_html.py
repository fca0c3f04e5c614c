"""The HTML report: one self-contained file that opens in headless Chromium without errors.

The page records script errors into ``<html data-errors>``; ``--dump-dom`` shows the
attribute after load. A screenshot of the first screen is kept as a test artifact in
``reports/test-artifacts/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.model import ReadinessReport
from harness.report.output import write_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "reports" / "test-artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium missing (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def html_path(nogo_report: ReadinessReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(nogo_report, tmp_path_factory.mktemp("html")) / "report.html"


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_html_is_self_contained(html_path: Path) -> None:
    html = html_path.read_text(encoding="utf-8")
    # the only URL is the SVG namespace; nothing to fetch, no fonts, no CDN
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", html)
    assert "@import" not in html and "url(" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count("<svg") >= 3  # latency, TTFT and RSS charts, inline


def test_html_drills_down_into_example_pairs(html_path: Path, nogo_report: ReadinessReport) -> None:
    html = html_path.read_text(encoding="utf-8")
    links = set(re.findall(r'href="#(pair-[^"]+)"', html))
    anchors = set(re.findall(r'id="(pair-[^"]+)"', html))
    # Every worst difference and failed gate with pairs links to them, and each link lands.
    assert len(nogo_report.drilldown) >= len(nogo_report.worst)
    assert {f"pair-{i}" for _, ids in nogo_report.drilldown for i in ids} == links
    assert links and links <= anchors
    # A pair's view: the request, both answers side by side, what differs highlighted.
    view = html[html.index('id="pair-req-000072"') :]
    view = view[: view.index("<h3", 10)]
    assert "client request" in view and "provider call" in view
    assert '<mark class="del">503</mark>' in view and '<mark class="ins">200</mark>' in view


@needs_chromium
def test_html_opens_in_chromium_without_errors(html_path: Path, tmp_path: Path) -> None:
    result = _chromium(tmp_path, "--dump-dom", html_path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'<html[^>]*data-errors="([^"]*)"', result.stdout)
    assert match is not None, result.stdout[:500]
    assert match.group(1) == "", f"script errors: {match.group(1)}"
    assert "Cutover readiness: NO-GO" in result.stdout
    assert "Uncaught" not in result.stderr
    assert "Refused to" not in result.stderr  # a CSP violation: something tried to load


@needs_chromium
def test_first_screen_screenshot(html_path: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report-first-screen.png"
    result = _chromium(
        tmp_path, "--window-size=1280,900", f"--screenshot={shot}", html_path.as_uri()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Uncaught" not in result.stderr
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / shot.name)
