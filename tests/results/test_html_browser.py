"""pareto.html in a real headless Chromium (Playwright driving the system's /usr/bin/chromium):
the page renders without console errors, loads nothing but itself, draws one point per plotted
trial, and hovering a point shows that trial's architecture and accuracy.

Needs the ``playwright`` Python package (the ``test`` extra) and a Chromium binary (Debian's
``chromium`` package; ``.ci/run`` installs it). Without them the test is skipped locally but
FAILS when ``CI`` is set: CI must never skip it silently.
Screenshots (before/after hovering) go to ``tmp_path`` and are copied to /tmp/plot_shots/.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.families.base import describe
from nas_student.results import pareto_front
from nas_student.results.runs import open_run
from nas_student.results.plots import plot_data
from nas_student.results.recommend import recommend

SHOTS = Path("/tmp/plot_shots")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing(reason: str):
    """Fail under CI (which always installs the browser), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}; .ci/run installs Chromium and `pip install -e .[test]` "
                    "installs playwright", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not (Path(exe).is_file() and os.access(exe, os.X_OK)):
        _missing("no Chromium binary (looked for $CHROMIUM, `chromium` on PATH, /usr/bin/chromium; "
                 "install it with `apt-get install chromium`)")
    return exe


def test_pareto_html_renders_and_hover_shows_architecture(small_run, tmp_path):
    exe = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"the playwright Python package is not installed ({exc})")

    run_dir = shutil.copytree(small_run, tmp_path / small_run.name)  # pareto writes into the run
    r = CliRunner().invoke(app, ["pareto", str(run_dir)])
    assert r.exit_code == 0, r.output
    page_path = run_dir / "pareto.html"
    assert page_path.is_file()

    # The frame the page was drawn from, made the way `nas-student pareto` makes it.
    view = open_run(run_dir)
    objs = list(view.objectives)
    front = pareto_front(view.trials, objs)
    data = plot_data(view.trials, front, objs, view.attrs, recommend(front, objs, view.recommend))
    assert len(data) >= 1
    archs = {int(t): a for t, a in zip(view.trials["trial"], view.trials["arch"])}

    url = page_path.resolve().as_uri()
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(10_000)
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("request", lambda q: requests.append(q.url))
            page.goto(url, wait_until="load")

            assert page.locator("svg#plot").is_visible()
            circles = page.locator("circle.pt")
            assert circles.count() == len(data)
            drawn = sorted(int(t) for t in circles.evaluate_all(
                "cs => cs.map(c => c.getAttribute('data-trial'))"))
            assert drawn == sorted(int(t) for t in data["trial"])
            tip = page.locator("#tip")
            assert not tip.is_visible()
            page.screenshot(path=str(tmp_path / "before_hover.png"), full_page=True)

            # The last circle is drawn on top (front points come last), so nothing covers it.
            target = circles.last
            trial = int(target.get_attribute("data-trial"))
            target.hover()
            tip.wait_for(state="visible")
            text = tip.inner_text()
            page.screenshot(path=str(tmp_path / "after_hover.png"), full_page=True)

            page.mouse.move(1, 1)  # leaving the point hides the tooltip again
            tip.wait_for(state="hidden")
        finally:
            browser.close()

    for name in ("before_hover.png", "after_hover.png"):
        shutil.copy(tmp_path / name, SHOTS / name)
    shutil.copy(run_dir / "pareto.png", SHOTS / "pareto.png")
    shutil.copy(page_path, SHOTS / "pareto.html")

    assert not errors, errors
    assert set(requests) == {url}, f"the page loaded more than itself: {sorted(set(requests))}"
    row = data[data["trial"] == trial].iloc[0]
    summary = describe(json.loads(archs[trial]))
    assert summary and summary == row["summary"]
    assert f"trial {trial}" in text
    assert summary in text, (summary, text)
    assert f"{float(row['accuracy']):.4f}" in text, (row["accuracy"], text)
