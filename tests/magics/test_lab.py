"""``--show-probs`` in a real shell against the test server (both endpoints, streamed and not), the
interactive view's continuation as a real call, and the lab magics' load and unload."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_openai.calls.request import build_request
from jupyter_openai.calls.run import Origin, run_call
from jupyter_openai.magics.lab import NO_PROBS, complete_magics, probs_view
from jupyter_openai.session.log import session_log
from tests.servers.fake import TEST_KEY
from tests.support.shown import notes, shown_order


@pytest.mark.parametrize("stream", ["", "--no-stream"])
@pytest.mark.parametrize(("endpoint", "field"), [("chat", "top_logprobs"), ("completions", "logprobs")])
def test_show_probs_asks_for_them_and_colours_the_answer(shell: object, server: object, endpoint: str, field: str,
                                                         stream: str) -> None:
    with capture_output() as cap:
        shell.run_cell(f"%%complete --show-probs -e {endpoint} {stream}\none two three")  # type: ignore
    body = server.requests[-1].body  # type: ignore[attr-defined]
    assert body[field] == 5 and (endpoint == "completions" or body["logprobs"] is True)
    page = next(o.data["text/html"] for o in cap.outputs if 'class="jo-tok"' in o.data.get("text/html", ""))
    assert page.count(' title="') == 4  # the answer's tokens, each with its alternatives
    assert "␣three: 70.0%" in page and "␣alt1" in page
    assert session_log[-1]["completion"] == "Echo: three two one"


def test_an_explicit_logprobs_count_is_kept(shell: object, server: object) -> None:
    with capture_output():
        shell.run_cell("%%complete --show-probs --logprobs 2\nhi")  # type: ignore[attr-defined]
    assert server.requests[-1].body["top_logprobs"] == 2  # type: ignore[attr-defined]


def test_a_server_that_sends_none_says_so_in_one_line(make_shell: object, body_server: object) -> None:
    body_server.answer({"id": "x", "object": "chat.completion", "model": "m",  # type: ignore[attr-defined]
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                                     "logprobs": None, "finish_reason": "stop"}]})
    ip = make_shell(env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": body_server.url})  # type: ignore
    with capture_output() as cap:
        ip.run_cell("%%complete --show-probs --no-stream -m m\nhi")
    assert notes(cap) == [NO_PROBS.format(endpoint="chat")] and cap.stderr == ""  # a note, after the status line
    assert shown_order(cap)[-2:] == ["status", "note"]
    assert session_log[-1]["completion"] == "hello"


def test_the_responses_endpoint_is_refused_before_sending(shell: object, server: object) -> None:
    with pytest.raises(UsageError, match="works with the chat and completions endpoints only"):
        shell.run_cell("%%complete --show-probs -e responses\nhi")  # type: ignore[attr-defined]
    assert not server.requests  # type: ignore[attr-defined]


def test_continuing_from_an_alternative_is_a_logged_call(shell: object, server: object) -> None:
    magics = complete_magics(shell)
    request = build_request({"prompt": "one two three", "model": "davinci-002", "logprobs": 3}, magics.defaults())
    outcome = run_call(magics.client(), request, log=magics.log)
    view = probs_view(magics, outcome, Origin("magic", 1))
    view.select(2)  # " two"
    alternative = view.choices.children[1]
    assert alternative.description == "continue with ␣alt1"
    alternative.click()
    assert server.requests[-1].body["prompt"] == "one two three" + "Echo: three alt1"  # type: ignore
    assert len(session_log) == 2 and "Echo:" in view.continued.value


def test_chat_answers_are_not_continued(shell: object) -> None:
    magics = complete_magics(shell)
    request = build_request({"prompt": "one", "logprobs": 2}, magics.defaults())
    view = probs_view(magics, run_call(magics.client(), request, log=magics.log), Origin())
    view.select(0)
    assert view.on_continue is None and view.choices.children == ()


def test_the_options_are_in_the_help(shell: object) -> None:
    doc = shell.magics_manager.magics["cell"]["complete"].__doc__  # type: ignore[attr-defined]
    assert "--show-probs" in doc and "--compare" in doc
    assert "complete_replay" in shell.magics_manager.magics["line"]  # type: ignore[attr-defined]


WIDGET = "application/vnd.jupyter.widget-view+json"


def _probability_views(cap: object) -> list[dict]:
    """The bundles of a cell's displays that show token probabilities (the static strip or the widget)."""
    return [o.data for o in cap.outputs  # type: ignore[attr-defined]
            if 'class="jo-tok"' in o.data.get("text/html", "") or WIDGET in o.data]


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_in_a_kernel_the_view_is_one_output_the_widget_with_its_html_fallback(
        shell: object, server: object, monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """ipykernel sets ``shell.kernel``: the widget path is taken. One display, whose bundle holds the
    widget for live front ends and the static view for nbviewer and GitHub, never the strip twice."""
    monkeypatch.setattr(shell, "kernel", SimpleNamespace(session=None), raising=False)
    with capture_output() as cap:
        shell.run_cell(f"%%complete --show-probs -e {endpoint}\none two three")  # type: ignore[attr-defined]
    views = _probability_views(cap)
    assert len(views) == 1, [sorted(v) for v in views]
    assert set(views[0]) == {WIDGET, "text/html", "text/plain"}
    assert views[0]["text/html"].count(' title="') == 4 and views[0]["text/plain"] == "Echo: three two one"
    assert not cap.stderr


def test_in_a_terminal_the_view_is_the_html_alone(shell: object, server: object) -> None:
    with capture_output() as cap:
        shell.run_cell("%%complete --show-probs\none two three")  # type: ignore[attr-defined]
    views = _probability_views(cap)
    assert len(views) == 1 and WIDGET not in views[0]


def test_a_logprob_of_1000_shows_as_certain_never_raises(make_shell: object, body_server: object,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    body_server.answer({"id": "x", "object": "chat.completion", "model": "m",  # type: ignore[attr-defined]
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"},
                                     "logprobs": {"content": [
                                         {"token": "hi", "logprob": 1000, "top_logprobs": [
                                             {"token": "hi", "logprob": 1000}, {"token": "yo", "logprob": 1e308}]},
                                         {"token": " there", "logprob": float("inf"), "top_logprobs": []}]},
                                     "finish_reason": "stop"}]})
    ip = make_shell(env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": body_server.url})  # type: ignore
    for kernel in (None, SimpleNamespace(session=None)):  # the HTML view, then the widget's
        monkeypatch.setattr(ip, "kernel", kernel, raising=False)
        with capture_output() as cap:
            ip.run_cell("%%complete --show-probs --no-stream -m m\nhi")
        page = _probability_views(cap)[0]["text/html"]
        assert "hi: 100.0%\n  hi  100.0%\n  yo  100.0%" in page and "␣there: 100.0%" in page
        assert session_log[-1]["completion"] == "hi there" and not cap.stderr


def test_the_grid_is_never_read_as_mathematics(shell: object, server: object) -> None:
    """Issue 22: JupyterLab typesets ``$…$`` in HTML outputs too; the grid's cells (answers, costs) are text."""
    with capture_output() as cap:
        shell.run_cell("%%complete --compare -t 0,1\nit costs $5 and $6")  # type: ignore[attr-defined]
    page = next(o.data["text/html"] for o in cap.outputs if "jo-grid" in o.data.get("text/html", ""))
    assert page.startswith('<table class="jo-grid tex2jax_ignore mathjax_ignore">') and "$6 and $5" in page
