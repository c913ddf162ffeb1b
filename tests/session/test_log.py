"""Tests of the session log: records as the magic fills them, thread safety, pandas, exports,
the JSONL file trait and ``%complete_log``.

Record contents are checked on calls made through a real shell against the test server;
the container behaviour on a private :class:`SessionLog`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_openai.magics.complete import LOG_COLUMNS
from jupyter_openai.session.log import COLUMNS, STATUSES, SessionLog, session_log
from tests.servers.fake import FakeOpenAIServer
from tests.support.shown import status

PROMPT = "one two three four five six"
ANSWER = "Echo: six five four three two one"


def run(shell, cell: str, **kwargs) -> capture_output:
    with capture_output() as cap:
        shell.run_cell(cell, **kwargs)
    return cap


def result(shell, cell: str):
    """The value of a cell, its display captured (not printed)."""
    with capture_output():
        return shell.run_cell(cell).result


def parse_utc(stamp: str) -> datetime:
    assert stamp.endswith("Z"), stamp
    parsed = datetime.fromisoformat(stamp[:-1] + "+00:00")
    assert parsed.utcoffset() == timedelta(0)
    return parsed


# -- records made by the magic -------------------------------------------------------------
def test_every_column_of_a_streamed_call(shell, server: FakeOpenAIServer) -> None:
    start = datetime.now(timezone.utc)
    counts = []
    for _ in range(2):
        counts.append(shell.execution_count)
        run(shell, f"%%complete -s 'Be brief.' --seed 3\n{PROMPT}", store_history=True)
    first, record = session_log[-2], session_log[-1]
    assert set(record) == set(COLUMNS)
    assert isinstance(record["id"], int) and record["id"] > first["id"]
    assert start - timedelta(seconds=1) <= parse_utc(record["timestamp"]) <= datetime.now(timezone.utc)
    assert record["source"] == "magic"
    assert [first["execution_count"], record["execution_count"]] == counts == [counts[0], counts[0] + 1]
    assert (record["model"], record["endpoint"]) == ("fake-chat", "chat")
    assert record["host"] == f"127.0.0.1:{server.port}"
    assert (record["prompt"], record["system"]) == (PROMPT, "Be brief.")
    assert (record["completion"], record["completions"], record["finish_reason"]) == (ANSWER, None, "stop")
    assert (record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]) == (8, 7, 15)
    assert 0 < record["time_to_first_token"] <= record["latency"] < 5
    assert (record["status"], record["error"]) == ("ok", None)
    assert record["request_id"] == server.requests[-1].request_id
    assert json.loads(record["params"]) == {"max_tokens": 256, "seed": 3, "stream": True}
    assert all(isinstance(v, (str, int, float, type(None))) for v in record.values())  # flat


def test_completions_call_with_several_choices(shell, server: FakeOpenAIServer) -> None:
    run(shell, f"%%complete -m davinci-002 -n 2 --max-tokens 20\n{PROMPT}")
    record = session_log[-1]
    assert (record["endpoint"], record["system"]) == ("completions", None)
    assert json.loads(record["completions"]) == [ANSWER, "Echo2: six five four three two one"]
    assert record["completion"] == ANSWER
    assert json.loads(record["params"]) == {"max_tokens": 20, "n": 2, "stream": True}


def test_tokens_are_none_when_the_server_sends_no_usage(shell, server: FakeOpenAIServer) -> None:
    server.add_fault(reject_stream_options=True)  # the client retries without include_usage
    cap = run(shell, f"%%complete\n{PROMPT}")
    assert "stream_options" not in server.requests[-1].body
    record = session_log[-1]
    assert record["status"] == "ok" and record["completion"] == ANSWER
    assert (record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]) == (None, None, None)
    assert "(estimated from the stream; " in status(cap)  # the screen estimates; the log keeps None


def test_error_record(shell, server: FakeOpenAIServer) -> None:
    server.add_fault(status=403)
    run(shell, f"%%complete\n{PROMPT}")
    record = session_log[-1]
    assert record["status"] == "error"
    assert record["error"].startswith("403 Permission denied: Country, region, or territory not supported.")
    assert record["request_id"] == server.requests[-1].request_id
    assert record["completion"] == ""
    assert record["prompt_tokens"] is None


@pytest.mark.parametrize(("cell", "expected"), [
    ("-m fake-reasoner", {"reasoning": "The user wrote 6 words. I will echo them in reverse order.",
                          "reasoning_tokens": 12, "refusal": None, "completion": ANSWER, "completion_tokens": 19,
                          "params": {"max_tokens": 256, "stream": True}}),
    ("-m fake-refuser --no-stream", {"reasoning": None, "reasoning_tokens": None, "completion": "",
                                     "refusal": "I'm sorry, but I can't help with that.", "completion_tokens": 8,
                                     "params": {"max_tokens": 256}}),
    ("-m gpt-5.4-mini --top-p 0.5 --reasoning-effort low", {
        "reasoning": None, "reasoning_tokens": 4, "refusal": None, "completion": ANSWER, "completion_tokens": 11,
        "params": {"max_completion_tokens": 256, "reasoning_effort": "low", "stream": True}}),  # sent, not asked
    ("-m gpt-5.4 -e responses --verbosity low", {
        "reasoning": None, "reasoning_tokens": 8, "refusal": None, "completion": ANSWER, "completion_tokens": 15,
        "params": {"max_output_tokens": 256, "store": False, "stream": True, "text": {"verbosity": "low"}}}),
], ids=["reasoning", "refusal", "gpt5-adapted", "responses"])
def test_reasoning_refusal_and_sent_params_columns(shell, server: FakeOpenAIServer, cell: str,
                                                   expected: dict) -> None:
    run(shell, f"%%complete {cell}\n{PROMPT}")
    record = session_log[-1]
    assert {name: json.loads(record[name]) if name == "params" else record[name] for name in expected} == expected
    assert record["model"] == record["requested_model"] == cell.split()[1] and record["status"] == "ok"
    assert json.loads(session_log.to_jsonl().splitlines()[-1])["reasoning_tokens"] == expected["reasoning_tokens"]


# -- the container ---------------------------------------------------------------------------
def test_missing_columns_become_none_and_unknown_columns_are_refused() -> None:
    log = SessionLog()
    row = log.append({"model": "m"})
    assert set(row) == set(COLUMNS)
    assert row["prompt_tokens"] is None and row["id"] == 1 and row["timestamp"]
    with pytest.raises(ValueError, match="api_key"):
        log.append({"api_key": "sk-x"})
    assert len(log) == 1


def test_list_like() -> None:
    log = SessionLog()
    for i in range(5):
        log.append({"prompt": f"p{i}"})
    assert len(log) == 5
    assert log[0]["prompt"] == "p0" and log[-1]["prompt"] == "p4"
    assert [r["prompt"] for r in log[1:3]] == ["p1", "p2"]
    assert [r["prompt"] for r in log] == [f"p{i}" for i in range(5)]
    assert [r["prompt"] for r in log.tail(2)] == ["p3", "p4"]
    assert log.tail(0) == []
    assert "5 call(s)" in repr(log)


def test_concurrent_appends(tmp_path: Path) -> None:
    threads, per_thread = 8, 400
    log = SessionLog(tmp_path / "calls.jsonl")
    barrier = threading.Barrier(threads)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            log.append({"source": f"t{worker}", "prompt": f"{worker}-{i}"})
            if i % 50 == 0:
                list(log)  # readers during writes
                log.tail(3)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len(log) == threads * per_thread
    assert len({r["id"] for r in log}) == threads * per_thread
    assert {r["prompt"] for r in log} == {f"{w}-{i}" for w in range(threads) for i in range(per_thread)}
    for worker in range(threads):  # each thread's records kept their order
        mine = [int(r["prompt"].split("-")[1]) for r in log if r["source"] == f"t{worker}"]
        assert mine == list(range(per_thread))
    lines = (tmp_path / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(r["id"] for r in log)


def test_clear_forgets_records_but_ids_stay_unique(tmp_path: Path) -> None:
    log = SessionLog(tmp_path / "calls.jsonl")
    ids = [log.append({"prompt": "a"})["id"], log.append({"prompt": "b"})["id"]]
    log.clear()
    assert len(log) == 0 and list(log) == []
    ids.append(log.append({"prompt": "c"})["id"])
    assert len(set(ids)) == 3
    assert len((tmp_path / "calls.jsonl").read_text().splitlines()) == 3  # the file is left as is


# -- pandas and exports ------------------------------------------------------------------------
def _sample_log() -> SessionLog:
    log = SessionLog()
    log.append({"model": "m", "prompt": 'multi\nline, "quoted" — ünïcode {braces}', "completion": "ok",
                "prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "latency": 0.25, "status": "ok",
                "params": json.dumps({"temperature": 0.2})})
    log.append({"model": "m", "prompt": "p", "completion": "", "status": "error", "error": "500 Server error: x",
                "latency": 1.5})
    log.append({"model": "m", "prompt": "q", "completion": "part", "status": "interrupted"})
    return log


def test_pandas_dataframe_takes_the_log_as_is() -> None:
    log = _sample_log()
    frame = pd.DataFrame(log)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 3
    assert frame["prompt"].tolist() == [r["prompt"] for r in log]
    assert frame["prompt_tokens"].iloc[0] == 3
    assert pd.isna(frame["prompt_tokens"].iloc[1])  # no made-up 0
    assert frame["status"].tolist() == ["ok", "error", "interrupted"]
    assert set(frame["status"]) <= set(STATUSES)


def test_to_dataframe_matches_and_handles_100k_records() -> None:
    log = _sample_log()
    pd.testing.assert_frame_equal(log.to_dataframe(), pd.DataFrame(log))
    assert list(SessionLog().to_dataframe().columns) == list(COLUMNS)
    big = SessionLog()
    for i in range(100_000):
        big.append({"model": "m", "prompt": "p", "completion": "c", "prompt_tokens": i, "latency": 0.1, "status": "ok"})
    started = time.perf_counter()
    frame = big.to_dataframe()
    elapsed = time.perf_counter() - started
    print(f"\nto_dataframe(): 100,000 records in {elapsed:.3f} s (target under 1 s; measured, not asserted)")
    assert frame.shape == (100_000, len(COLUMNS))
    assert frame["prompt_tokens"].iloc[-1] == 99_999


def test_json_round_trip(tmp_path: Path) -> None:
    log = _sample_log()
    text = log.to_json(tmp_path / "log.json")
    assert json.loads(text) == list(log)
    assert (tmp_path / "log.json").read_text(encoding="utf-8") == text


def test_jsonl_round_trip(tmp_path: Path) -> None:
    log = _sample_log()
    text = log.to_jsonl(tmp_path / "log.jsonl")
    assert [json.loads(line) for line in text.splitlines()] == list(log)
    assert (tmp_path / "log.jsonl").read_text(encoding="utf-8") == text


def test_csv_round_trip(tmp_path: Path) -> None:
    log = _sample_log()
    text = log.to_csv(tmp_path / "log.csv")
    assert (tmp_path / "log.csv").read_text(encoding="utf-8") == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [{c: "" if r[c] is None else str(r[c]) for c in COLUMNS} for r in log]
    frame = pd.read_csv(tmp_path / "log.csv")
    assert list(frame.columns) == list(COLUMNS)
    assert frame["prompt"].iloc[0] == log[0]["prompt"]


# -- the log file trait and %complete_log --------------------------------------------------------
def test_log_file_trait_appends_line_by_line(shell, server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    shell.run_line_magic("config", f"CompleteMagics.log_file = {str(path)!r}")
    run(shell, "%%complete\nfirst call")
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [session_log[-1]]
    server.add_fault(status=400)
    run(shell, "%%complete\nsecond call")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(session_log)[-2:]
    assert json.loads(lines[1])["status"] == "error"
    shell.run_line_magic("config", "CompleteMagics.log_file = None")
    run(shell, "%%complete\nthird call")
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert len(session_log) == 3


def test_complete_log_shows_the_latest_calls(shell, server: FakeOpenAIServer) -> None:
    for word in ("alpha", "beta", "gamma"):
        run(shell, f"%%complete\n{word}")
    cap = run(shell, "%complete_log -n 2")
    table = result(shell, "%complete_log -n 2")
    assert table.columns == list(LOG_COLUMNS)
    assert [row["prompt"] for row in table.rows] == ["beta", "gamma"]
    assert "Echo: gamma" in cap.stdout and "alpha" not in cap.stdout
    assert '<td style="white-space:nowrap;padding:0.25em 0.35em">Echo: beta</td>' in table._repr_html_()
    default = result(shell, "%complete_log")
    assert [row["prompt"] for row in default.rows] == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_complete_log_save(shell, server: FakeOpenAIServer, tmp_path: Path, suffix: str) -> None:
    run(shell, "%%complete\nalpha")
    run(shell, "%%complete\nbeta")
    path = tmp_path / f"saved{suffix}"
    cap = run(shell, f"%complete_log --save {path}")
    assert cap.stdout == f"Saved 2 call(s) to {path}\n"
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        assert json.loads(text) == list(session_log)
    elif suffix == ".jsonl":
        assert [json.loads(line) for line in text.splitlines()] == list(session_log)
    else:
        assert [row["prompt"] for row in csv.DictReader(io.StringIO(text))] == ["alpha", "beta"]


def test_complete_log_save_needs_a_known_suffix(shell, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.json, \.jsonl or \.csv"):
        run(shell, f"%complete_log --save {tmp_path / 'log.txt'}")
    assert not (tmp_path / "log.txt").exists()


def test_complete_log_clear(shell, server: FakeOpenAIServer) -> None:
    run(shell, "%%complete\nalpha")
    assert len(session_log) == 1
    cap = run(shell, "%complete_log --clear")
    assert cap.stdout == "Session log cleared.\n"
    assert len(session_log) == 0
    assert repr(result(shell, "%complete_log")) == "(empty)"


# -- writing never loses the outcome (issue 12) -------------------------------------------------
SURROGATE = "bad \udcff byte"  # what os.fsdecode / surrogateescape make of a stray byte


def test_a_lone_surrogate_is_written_escaped(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    log = SessionLog(path)
    log.append({"prompt": SURROGATE, "status": "ok"})
    assert json.loads(path.read_bytes())["prompt"] == SURROGATE  # \udcff: valid JSON, same text back
    for name, reader in (("log.json", json.loads), ("log.jsonl", json.loads)):
        getattr(log, "to_" + name.split(".")[1])(tmp_path / name)
        data = reader((tmp_path / name).read_text(encoding="utf-8"))
        assert (data[0] if isinstance(data, list) else data)["prompt"] == SURROGATE
    log.to_csv(tmp_path / "log.csv")
    assert "bad \\udcff byte" in (tmp_path / "log.csv").read_text(encoding="utf-8")


def test_an_unwritable_log_file_warns_once_in_one_line_and_keeps_the_records(tmp_path: Path) -> None:
    from jupyter_openai.session.log import LogFileWarning

    path = tmp_path / "missing" / "calls.jsonl"
    log = SessionLog(path)
    with pytest.warns(LogFileWarning) as caught:
        for n in range(3):
            log.append({"prompt": f"p{n}", "status": "ok"})
    assert len(caught) == 1  # once per path and reason, not per call
    message = str(caught[0].message)
    assert str(path) in message and "No such file or directory" in message and "\n" not in message
    import warnings

    shown = warnings.formatwarning(caught[0].message, caught[0].category, caught[0].filename, caught[0].lineno)
    assert shown.count("\n") == 1 and "Traceback" not in shown  # one line as printed, no source line
    assert [r["prompt"] for r in log] == ["p0", "p1", "p2"]
    path.parent.mkdir()
    log.append({"prompt": "p3"})  # the folder exists now: writing resumes
    assert json.loads(path.read_text(encoding="utf-8"))["prompt"] == "p3"
    lines = []
    log2 = SessionLog(tmp_path / "nope" / "x.jsonl", on_write_error=lines.append)  # a callback instead
    log2.append({"prompt": "q"})
    assert len(lines) == 1 and len(log2) == 1


def test_log_files_are_created_private(tmp_path: Path) -> None:
    log = SessionLog(tmp_path / "calls.jsonl")
    log.append({"prompt": "p"})
    log.to_json(tmp_path / "saved.json")
    log.to_csv(tmp_path / "saved.csv")
    for name in ("calls.jsonl", "saved.json", "saved.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name


def test_the_magic_keeps_the_outcome_when_the_log_file_cannot_be_written(shell, server: FakeOpenAIServer,
                                                                         tmp_path: Path) -> None:
    from jupyter_openai.session.log import LogFileWarning

    path = tmp_path / "missing" / "calls.jsonl"
    shell.run_line_magic("config", f"CompleteMagics.log_file = {str(path)!r}")
    with pytest.warns(LogFileWarning, match="could not write the session log file"):
        cap = run(shell, f"%%complete -o answer\n{PROMPT}")
    assert shell.user_ns["answer"] == ANSWER
    assert any(ANSWER in str(o.data.get("text/plain")) for o in cap.outputs)  # the answer shown
    assert status(cap).startswith("fake-chat · ")  # and the status line
    assert "Traceback" not in cap.stdout + cap.stderr
    assert session_log[-1]["status"] == "ok" and not path.exists()


def test_a_surrogate_in_a_prompt_is_logged_and_saved(shell, server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    shell.run_line_magic("config", f"CompleteMagics.log_file = {str(path)!r}")
    shell.user_ns["p"] = SURROGATE
    run(shell, "%%complete -i -o answer\n{p}")
    assert shell.user_ns["answer"] and session_log[-1]["prompt"] == SURROGATE
    assert json.loads(path.read_text(encoding="utf-8"))["prompt"] == SURROGATE
    saved = tmp_path / "saved.json"
    cap = run(shell, f"%complete_log --save {saved}")
    assert cap.stdout == f"Saved 1 call(s) to {saved}\n"
    assert json.loads(saved.read_text(encoding="utf-8"))[0]["prompt"] == SURROGATE


def test_complete_log_is_readable_in_100_columns(shell, server: FakeOpenAIServer) -> None:
    """Issue 13: empty columns hidden, compact times, long text cut to fit; --full shows it all."""
    long_prompt = "tell me " + "very " * 60 + "much"
    run(shell, f"%%complete\n{long_prompt}")
    table = result(shell, "%complete_log")
    text = repr(table)
    assert all(len(line) <= 100 for line in text.splitlines()), text
    header = text.splitlines()[0].split()
    assert header[:4] == ["id", "time", "(UTC)", "source"] and "in" in header and "out" in header
    stamp = session_log[-1]["timestamp"]
    assert stamp.split("T")[1][:8] in text and stamp not in text  # HH:MM:SS, not the whole ISO time
    assert long_prompt not in text and "…" in text
    assert f'title="{long_prompt}"' in table._repr_html_()  # the whole text on hover
    session_log.append({"source": "magic", "model": "m", "status": "ok", "prompt": "x", "completion": "y"})
    sparse = repr(result(shell, "%complete_log -n 1")).splitlines()[0].split()
    assert "in" not in sparse and "s" not in sparse and "prompt" in sparse
    full = repr(result(shell, "%complete_log -n 2 --full"))
    assert long_prompt in full and "in" in full.splitlines()[0].split()


def test_complete_log_says_how_many_calls_it_leaves_out(shell, server: FakeOpenAIServer) -> None:
    """Issue 22: the table showed the last 10 of 18 calls with no word of the 8 others. Its HTML keeps
    each call on one line (JupyterLab's table style wraps cells) with a short completion column."""
    for i in range(12):
        session_log.append({"source": "magic", "model": "m", "status": "ok", "prompt": f"p{i}",
                            "completion": "a long answer " * 10})
    table = result(shell, "%complete_log")
    assert len(table.rows) == 10 and table.hidden == 2
    assert repr(table).splitlines()[-1] == "last 10 of 12 calls; %complete_log -n 12 for all"
    page = table._repr_html_()
    assert page.endswith(">last 10 of 12 calls; %complete_log -n 12 for all</div>")
    assert page.count("white-space:nowrap") == page.count("<td ") + page.count("<th ")
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert "a long answer a long…" in cells or any(c.startswith("a long") and c.endswith("…") for c in cells)
    assert max(len(c) for c in cells) <= 20
    assert "last" not in repr(result(shell, "%complete_log -n 12"))  # all shown: no line
    assert "last" not in repr(result(shell, "%complete_log -n 50"))
