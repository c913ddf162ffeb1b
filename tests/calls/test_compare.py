"""Comparisons: option words expanded per combination, calls run a few at a time, and
``%%complete --compare`` in a real shell against the test server (grid, log, DataFrame)."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_openai.calls import compare
from jupyter_openai.errors import ConfigurationError
from jupyter_openai.magics.complete import CompleteMagics
from jupyter_openai.session.log import session_log

ACTIONS = CompleteMagics.complete.parser._option_string_actions


def test_every_combination_in_order_other_options_kept() -> None:
    combos = compare.expand(["--compare", "-m", "a,b", "--max-tokens", "5", "-t", "0,1", "-s", "x,y"], ACTIONS)
    assert [c.values for c in combos] == [{"model": m, "temperature": t} for m in "ab" for t in "01"]
    assert combos[0].argv == ["-m", "a", "--max-tokens", "5", "-t", "0", "-s", "x,y"]  # -s's comma is text


@pytest.mark.parametrize(("words", "flag"), [(["-t0,0.5"], "-t"), (["--temperature=0,0.5"], "--temperature"),
                                             (["--temperature", "0,0.5"], "--temperature")])
def test_every_spelling_of_an_option(words: list[str], flag: str) -> None:
    assert [c.argv for c in compare.expand(words, ACTIONS)] == [[flag, "0"], [flag, "0.5"]]


def test_seeds_repeated_values_and_no_list_at_all() -> None:
    combos = compare.expand(["--seed", "1, 2,1"], ACTIONS)
    assert [c.values["seed"] for c in combos] == ["1", "2"]
    assert compare.expand(["-n", "2"], ACTIONS) == [compare.Combination(["-n", "2"], {})]


@pytest.mark.parametrize(("words", "message"), [
    (["-m", "a,,b"], "empty value"),
    (["-t"], "needs a value"),
    (["-m", ",".join(map(str, range(9))), "-t", ",".join(map(str, range(9)))], "81 combinations is too many"),
])
def test_mistakes(words: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        compare.expand(words, ACTIONS)


def test_run_all_keeps_the_order_and_bounds_the_calls_in_flight() -> None:
    lock, running, peak = threading.Lock(), [0], [0]
    first_three = threading.Barrier(3)  # an event, not a sleep: a busy machine starts threads late

    def call(number: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if number < 3:  # the first three calls meet: three in flight at once (fewer workers: broken)
            first_three.wait(timeout=30)
        with lock:
            running[0] -= 1
        return number

    assert compare.run_all([lambda n=n: call(n) for n in range(10)], workers=3) == list(range(10))
    assert peak[0] == 3
    assert compare.run_all([]) == []


# -- in a shell ----------------------------------------------------------------------------------
def test_the_grid_logs_every_call_and_stores_a_dataframe(shell: object) -> None:
    with capture_output() as cap:
        shell.run_cell("%%complete --compare -m fake-chat,davinci-002 -t 0,1 --seed 7 -o grid\n"  # type: ignore
                       "one two three")
    grid = shell.user_ns["grid"]  # type: ignore[attr-defined]
    assert isinstance(grid, pd.DataFrame) and len(grid) == 4
    assert list(grid["model"]) == ["fake-chat", "fake-chat", "davinci-002", "davinci-002"]
    assert list(grid["temperature"]) == ["0", "1", "0", "1"] and set(grid["seed"]) == {"7"}
    assert set(grid["answer"]) == {"Echo: three two one"} and set(grid["status"]) == {"ok"}
    assert sorted(grid["log_id"]) == sorted(r["id"] for r in session_log)  # logged as they finished
    assert len(session_log) == 4
    sent = sorted((r["requested_model"], r["endpoint"]) for r in session_log)
    assert sent == [("davinci-002", "completions")] * 2 + [("fake-chat", "chat")] * 2
    html = cap.outputs[0].data["text/html"]
    assert html.count("<tr>") == 5 and "Echo: three two one" in html and "4 calls" in html
    assert "tokens in / out" in html and "3 / 4" in html


def test_a_bad_value_stops_the_comparison_before_any_call(shell: object, server: object) -> None:
    with pytest.raises(UsageError):
        shell.run_cell("%%complete --compare -t 0,9\nhello")  # type: ignore[attr-defined]
    assert not server.requests  # type: ignore[attr-defined]
    assert len(session_log) == 0


def test_errors_show_in_their_row(shell: object, server: object) -> None:
    server.add_fault(path="/completions", status=400, message="no such thing")  # type: ignore[attr-defined]
    with capture_output() as cap:
        shell.run_cell("%%complete --compare --no-stream -m fake-chat,davinci-002\nhello")  # type: ignore
    html = cap.outputs[0].data["text/html"]
    assert "error: 400" in html and "no such thing" in html and "Echo: hello" in html
    assert sorted(r["status"] for r in session_log) == ["error", "ok"]


def test_the_grid_words_token_counts_a_server_did_not_send(make_shell: Any, make_server: Any) -> None:
    """Issue 22: a server that sends no usage in streams (llama-cpp-python) gets words, not ``?``."""
    fake = make_server(profile="llama-cpp-python", api_key=None)
    ip = make_shell(env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-anything-000"})
    with capture_output() as cap:
        ip.run_cell("%%complete --compare -t 0,1 -m fake-chat\none two")  # type: ignore[attr-defined]
    html = cap.outputs[0].data["text/html"]
    assert html.count(" out tokens (estimated from the stream; in: not reported by the server)") == 2, html
    assert ">?<" not in html and "? /" not in html and "/ ?" not in html
