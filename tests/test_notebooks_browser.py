"""End to end, as a person would: JupyterLab on 127.0.0.1 with a temporary token, notebooks
opened in headless Chromium (Debian's, driven by Playwright) and run from the Run menu.

- The data-loading notebook, opened from ``notebooks/`` of a tiny workbook laid out as the project
  (so its kernel starts in ``notebooks/``, as JupyterLab does): no cell shows an error, the image
  grids are shown, and its files land in the workbook's ``experiments/``.
- The pair explorer: all cells run, the slider moved, next clicked, attention toggled, a filter
  chosen and two images verified.

Screenshots go to ``$EXPLORER_SCREENSHOTS`` (default: the test's temporary folder).

``$EXPLORER_RUN`` explores that run folder instead of the tiny test run (``make screenshot``
uses it for the picture in docs/evaluation.md). Without Chromium or Playwright the test skips, unless
``$BACKBONE_REQUIRE_BROWSER=1`` (CI sets it), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from backbone.data.layouts.load import load_index
from backbone.evaluation.metrics import reported_threshold
from backbone.evaluation.scores import read_scores
from backbone.labels import DIFFERENT
from backbone.training.config import TrainConfig

from conftest import PROJECT, make_workbook

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
VIEWPORT = {"width": 1440, "height": 1000}


def _missing(reason: str):
    if os.environ.get("BACKBONE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (BACKBONE_REQUIRE_BROWSER=1: `make browser` installs it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_notebook(folder: Path, run: Path) -> Path:
    """The explorer notebook with ``run`` injected by papermill (not executed)."""
    import papermill as pm

    out = folder / "explorer.ipynb"
    pm.execute_notebook(
        str(PROJECT / "notebooks" / "06_pair_explorer.ipynb"),
        str(out),
        parameters={"run": str(run)},
        prepare_only=True,
        progress_bar=False,
    )
    return out


class JupyterLab:
    """A JupyterLab server on loopback, isolated from the user's configuration, stopped on exit."""

    def __init__(self, root: Path, home: Path):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        root.mkdir(parents=True, exist_ok=True)
        config = home / "config"
        (config / "labconfig").mkdir(parents=True)
        # no "receive Jupyter news?" toast over the screenshots
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
        )
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        }
        self.log = open(home / "jupyterlab.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=root,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}; see {home / 'jupyterlab.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within 90 s; see {home / 'jupyterlab.log'}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def lab(tmp_path):
    server = JupyterLab(tmp_path / "lab", tmp_path / "home")
    yield server
    server.stop()


def appears(locator, timeout_error: type[Exception], timeout_ms: int) -> bool:
    """Whether ``locator`` becomes visible within ``timeout_ms`` (Playwright's timeout error is
    passed in because Playwright is imported only when the test runs)."""
    try:
        locator.wait_for(timeout=timeout_ms)
    except timeout_error:
        return False
    return True


def source_is_pair_head(run: Path) -> bool:
    """Pair-classification runs score with a head's probability, not a cosine similarity."""
    return TrainConfig.load(run / "config.yaml").model.pair_head


def text(page, name: str) -> str:
    return page.locator(f".bb-{name}").first.inner_text()


def src(page, name: str) -> str:
    return page.locator(f"img.bb-{name}").get_attribute("src")


def wait_changed(page, getter, before: str, what: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = getter()
        if now != before:
            return now
        page.wait_for_timeout(100)
    raise AssertionError(f"{what} did not change from {before!r}")


def browser_or_skip():
    """Playwright's sync API and its timeout error; skips (or fails in CI) without a browser."""
    if not CHROMIUM.is_file():
        _missing(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    return sync_playwright, PlaywrightTimeout


def open_and_run_all(page, lab: JupyterLab, notebook: str, timeout_error: type[Exception]) -> None:
    """Open ``notebook`` (relative to the server's root), start its kernel, and Run All Cells."""
    page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}")
    page.locator(".jp-Notebook").wait_for(timeout=60_000)
    # JupyterLab may first ask which kernel to start: take the one the notebook names
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if appears(dialog, timeout_error, timeout_ms=15_000):
        dialog.get_by_role("button", name="Select").click()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(state="attached", timeout=90_000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def test_the_data_loading_notebook_opened_from_notebooks(tiny_synth, lab, tmp_path):
    sync_playwright, timeout_error = browser_or_skip()
    shots = Path(os.environ.get("EXPLORER_SCREENSHOTS") or tmp_path / "screenshots").resolve()
    shots.mkdir(parents=True, exist_ok=True)
    workbook = make_workbook(lab.root, tiny_synth)  # the server's root is a tiny clone of the project
    shutil.copy(PROJECT / "notebooks" / "01_data_loading.ipynb", workbook / "notebooks")
    cells = sum(
        c["cell_type"] == "code"
        for c in json.loads((workbook / "notebooks" / "01_data_loading.ipynb").read_text())["cells"]
    )

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            open_and_run_all(page, lab, "notebooks/01_data_loading.ipynb", timeout_error)
            # every code cell has run when each prompt shows its execution number
            page.wait_for_function(
                r"""n => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
                          return p.length === n && p.every(t => /^\[\d+\]:$/.test(t)); }""", arg=cells, timeout=180_000)  # fmt: skip
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                has_text=re.compile("Error|Traceback"),
            )
            assert errors.count() == 0, errors.first.inner_text()
            grids = page.locator(".jp-OutputArea-output img")
            assert grids.count() == 3, "twins, one person's photos and example pairs"
            assert all(grids.nth(i).evaluate("img => img.naturalWidth > 200") for i in range(3))
            page.screenshot(path=str(shots / "data_loading.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(shots / "data_loading_failure.png"))
            raise
        finally:
            browser.close()
    figures = workbook / "scratch" / "data-overview" / "figures"
    assert {p.name for p in figures.glob("*.png")} == {"twins.png", "one_person.png", "example_pairs.png"}
    assert not (workbook / "notebooks" / "experiments").exists()


def test_the_explorer_in_jupyterlab(tiny_run, lab, tmp_path):
    sync_playwright, PlaywrightTimeout = browser_or_skip()
    run = Path(os.environ.get("EXPLORER_RUN") or tiny_run).resolve()
    shots = Path(os.environ.get("EXPLORER_SCREENSHOTS") or tmp_path / "screenshots").resolve()
    shots.mkdir(parents=True, exist_ok=True)
    scored = read_scores(run / "test_scores.tsv")
    scores = scored.scores
    reported = reported_threshold(json.loads((run / "metrics.json").read_text()))  # where the explorer starts

    def false_accepts(threshold: float) -> str:
        return f"false accepts {int(((scores >= threshold) & (scored.labels == DIFFERENT)).sum())}"

    notebook = prepare_notebook(lab.root, run)
    data = TrainConfig.load(run / "config.yaml").data
    image = load_index(data.root, data.kind).absolute(scored.pairs[0].path_a).resolve()  # any image of the run's data

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            open_and_run_all(page, lab, notebook.name, PlaywrightTimeout)
            page.locator(".bb-verdict").wait_for(timeout=120_000)

            # the first pair, its verdict and the counts
            verdict, position, counts = text(page, "verdict"), text(page, "position"), text(page, "counts")
            assert "similarity" in verdict and f"threshold {reported:.4f}" in verdict, verdict
            assert re.search(rf"pair 1 of {len(scores)} all", position), position
            assert f"all {len(scores)}" in counts and false_accepts(reported) in counts, counts
            page.locator(".bb-explorer").screenshot(path=str(shots / "explorer_first.png"))

            # drag the threshold slider far from where it starts: verdicts, metrics and counts follow
            metrics = text(page, "metrics")
            slider = page.locator(".bb-threshold .noUi-base")
            box, handle = slider.bounding_box(), page.locator(".bb-threshold .noUi-handle").bounding_box()
            low, high = (float(v) for v in (page.locator(".bb-threshold").evaluate("e => e.querySelector('.noUi-target').noUiSlider.options.range.min"),
                                              page.locator(".bb-threshold").evaluate("e => e.querySelector('.noUi-target').noUiSlider.options.range.max")))  # fmt: skip
            target = max((float(np.quantile(scores, q)) for q in (0.15, 0.85)), key=lambda t: abs(t - reported))
            page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
            page.mouse.down()
            page.mouse.move(
                box["x"] + box["width"] * (target - low) / (high - low), handle["y"] + handle["height"] / 2, steps=12
            )
            page.mouse.up()
            shown = float(page.locator(".bb-threshold .widget-readout").inner_text())
            assert abs(shown - target) < 0.05 * (high - low), (shown, target)
            page.locator(".bb-verdict", has_text=f"threshold {shown:.4f}").wait_for(
                timeout=30_000
            )  # the kernel caught up
            assert text(page, "metrics") != metrics
            assert false_accepts(shown) in text(page, "counts"), text(page, "counts")

            # next: another pair, another face
            face, before = src(page, "face-a"), text(page, "position")
            page.locator("button.bb-next").click()
            now = wait_changed(page, lambda: text(page, "position"), before, "the position after next")
            number = int(
                re.search(r"pair (\d+) of", before).group(1)
            )  # the pair on show stays on show when the threshold moves
            assert f"pair {number + 1} of" in now, (before, now)
            wait_changed(page, lambda: src(page, "face-a"), face, "face A after next")

            # the attention overlay changes both faces (a global-only model has none: the toggle is off)
            toggle = page.locator(".bb-attention input[type=checkbox]")
            if TrainConfig.load(run / "config.yaml").model.attention:
                plain = src(page, "face-b")
                toggle.check()
                wait_changed(page, lambda: src(page, "face-b"), plain, "face B after the attention toggle")
            else:
                assert toggle.is_disabled()
            page.screenshot(path=str(shots / "explorer_window.png"))
            page.locator(".bb-explorer").screenshot(path=str(shots / "explorer.png"))

            # a filter narrows the pairs
            page.locator(".bb-filter select").select_option("twin negatives")
            page.locator(".bb-position", has_text="twin negatives").wait_for(timeout=30_000)

            # verify: a path and an upload; a corrupt upload is a clear message
            page.locator(".bb-path-a input").fill(str(image))
            (tmp_path / "broken.jpg").write_bytes(b"this is not a picture")
            with page.expect_file_chooser() as chooser:
                page.locator(".bb-upload-b").click()
            chooser.value.set_files(str(tmp_path / "broken.jpg"))
            page.locator(".bb-verify").click()
            page.get_by_text("cannot read image broken.jpg").wait_for(timeout=30_000)
            with page.expect_file_chooser() as chooser:
                page.locator(".bb-upload-b").click()
            chooser.value.set_files(str(image))
            page.locator(".bb-verify").click()
            result = page.locator(".bb-verify-result", has_text="similarity")
            result.wait_for(timeout=30_000)
            if not source_is_pair_head(run):  # the same image twice: cosine similarity 1
                assert "similarity 1.0000" in result.inner_text(), result.inner_text()
            page.locator(".bb-verify-result").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "explorer_verify.png"))
        except Exception:
            page.screenshot(path=str(shots / "failure.png"))  # what the page showed when the test failed
            raise
        finally:
            browser.close()
    assert (shots / "explorer.png").stat().st_size > 10_000
