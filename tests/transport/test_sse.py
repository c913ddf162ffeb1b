"""Tests for jupyter_openai.transport.sse: one test per event-stream rule, plus property tests."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_openai.transport.sse import ServerSentEvent, SSEDecoder, iter_events

BOM = b"\xef\xbb\xbf"


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    """Feed ``chunks`` to a fresh decoder, close it, return all events."""
    decoder = SSEDecoder()
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def datas(*chunks: bytes) -> list[str]:
    return [e.data for e in decode(*chunks)]


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


# -- ServerSentEvent ---------------------------------------------------------


def test_event_defaults_repr_and_eq():
    e = ServerSentEvent(data="x")
    assert (e.event, e.data, e.id, e.retry) == ("message", "x", "", None)
    assert e == ServerSentEvent("message", "x", "", None)
    assert e != ServerSentEvent("other", "x")
    assert e != "x"
    assert repr(e) == "ServerSentEvent(event='message', data='x', id='', retry=None)"
    assert not hasattr(e, "__dict__")


# -- rule 1: line endings ----------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_lf_crlf_and_lone_cr_end_lines(eol):
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert datas(stream) == ["a\nb", "c"]
    assert datas(*bytewise(stream)) == ["a\nb", "c"]


def test_mixed_line_endings_in_one_stream():
    assert datas(b"data: a\r\ndata: b\rdata: c\n\r\n") == ["a\nb\nc"]


def test_crlf_split_across_chunks_is_one_line_break():
    # If CR and LF counted as two breaks, "a" would be dispatched on its own.
    assert datas(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_cr_at_chunk_end_then_empty_chunk_then_lf():
    assert datas(b"data: a\r", b"", b"\ndata: b\n\n") == ["a\nb"]


def test_cr_at_chunk_end_followed_by_other_byte():
    assert datas(b"data: a\r", b"\r", b"data: b\r\r") == ["a", "b"]


# -- rule 2: UTF-8 ----------------------------------------------------------


def test_multibyte_characters_split_across_chunks_decode_whole():
    text = "é€😀 漢字"
    stream = f"data: {text}\n\n".encode()
    assert datas(*bytewise(stream)) == [text]
    cut = stream.index("😀".encode()) + 2  # inside the 4-byte emoji
    assert datas(stream[:cut], stream[cut:]) == [text]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_unicode_line_separators_stay_in_data(sep):
    stream = f"data: a{sep}b\n\n".encode()
    assert datas(stream) == [f"a{sep}b"]
    assert datas(*bytewise(stream)) == [f"a{sep}b"]


def test_invalid_utf8_is_replaced():
    assert datas(b"data: a\xffb\xe2\x82\n\n") == ["a\ufffdb\ufffd"]


# -- rule 3: byte order mark -------------------------------------------------


def test_leading_bom_is_dropped():
    assert datas(BOM + b"data: x\n\n") == ["x"]


def test_leading_bom_split_over_chunks_is_dropped():
    assert datas(b"\xef", b"\xbb", b"\xbf", b"data: x\n\n") == ["x"]
    assert datas(b"\xef\xbb", b"\xbfdata: x\n\n") == ["x"]


def test_only_one_bom_is_dropped():
    # The second BOM becomes part of the field name "\ufeffdata": unknown field.
    assert datas(BOM + BOM + b"data: x\n\n") == []


def test_bom_after_stream_start_is_kept():
    assert datas(b"data: x\n\n" + BOM + b"data: y\n\n") == ["x"]
    assert datas(b"data: " + BOM + b"y\n\n") == ["\ufeffy"]


def test_partial_bom_at_stream_start_is_not_dropped():
    assert datas(b"\xef\xbb", b"data: x\n\n") == []  # field "\ufffd\ufffddata"
    assert datas(b"\xef\xbb", b"Xdata: x\n\n") == []  # no 3 bytes dropped either


def test_bom_only_stream_is_empty():
    assert datas(b"\xef", b"\xbb") == []
    assert datas(BOM) == []


# -- rule 4: comments and fields --------------------------------------------


def test_comment_lines_are_ignored():
    assert datas(b": keep-alive\n:\ndata: x\n: mid\n\n") == ["x"]
    assert datas(b": only a comment\n\n") == []


def test_exactly_one_leading_space_is_stripped():
    assert datas(b"data:x\n\ndata: x\n\ndata:  x\n\ndata: \n\n") == ["x", "x", " x", ""]
    assert datas(b"data:\tx\n\n") == ["\tx"]  # only a space, not other whitespace


def test_colon_inside_value_is_kept():
    assert datas(b"data: a: b:c\n\n") == ["a: b:c"]


def test_line_without_colon_is_field_with_empty_value():
    assert decode(b"data\n\n") == [ServerSentEvent(data="")]
    assert decode(b"event\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_unknown_fields_are_ignored():
    assert decode(b"foo: bar\nDATA: no\ndata: x\nevent : no\n\n") == [ServerSentEvent(data="x")]


# -- rule 5: dispatch --------------------------------------------------------


def test_data_lines_join_with_newline():
    assert datas(b"data: a\ndata:\ndata: c\n\n") == ["a\n\nc"]


def test_blank_line_without_data_dispatches_nothing():
    assert decode(b"event: ping\n\n") == []
    assert decode(b"\n\n\n") == []


def test_empty_data_line_dispatches_empty_event():
    assert datas(b"data:\n\n") == [""]
    assert datas(b"data:\ndata:\n\n") == ["\n"]


def test_event_type_is_set_and_reset_after_blank_line():
    stream = b"event: ping\n\ndata: a\n\nevent: delta\ndata: b\n\n: c\ndata: c\n\n"
    expected = [("message", "a"), ("delta", "b"), ("message", "c")]
    assert [(e.event, e.data) for e in decode(stream)] == expected
    assert [(e.event, e.data) for e in decode(*bytewise(stream))] == expected


def test_fields_before_a_chunk_boundary_apply_to_the_event():
    d = SSEDecoder()
    assert d.feed(b"event: e\nretry: 5\n") == []
    assert d.feed(b"data: x\n\ndata: y\n\n") == [
        ServerSentEvent("e", "x", "", 5), ServerSentEvent("message", "y", "", None),
    ]
    assert d.feed(b"retry: 6\n") == []
    assert d.feed(b"data: z\n\n") == [ServerSentEvent("message", "z", "", 6)]


def test_empty_event_field_means_message():
    assert decode(b"event:\ndata: x\n\n")[0].event == "message"


# -- rule 6: id and retry ----------------------------------------------------


def test_id_persists_across_later_events():
    d = SSEDecoder()
    events = d.feed(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n")
    assert [(e.data, e.id) for e in events] == [("a", "1"), ("b", "1"), ("c", "2")]
    assert d.last_event_id == "2"


def test_empty_id_resets_last_event_id():
    events = decode(b"id: 1\ndata: a\n\nid\ndata: b\n\n")
    assert [e.id for e in events] == ["1", ""]


def test_id_containing_nul_is_ignored():
    d = SSEDecoder()
    events = d.feed(b"id: 1\n\nid: 2\x003\ndata: a\n\n")
    assert events[0].id == "1"
    assert d.last_event_id == "1"


def test_last_event_id_updates_only_at_blank_line():
    d = SSEDecoder()
    d.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert d.last_event_id == "1"  # event 2 was never completed
    d.feed(b"\n")
    assert d.last_event_id == "2"
    d.feed(b"id: 3\n\n")  # a blank line commits the id even without data
    assert d.last_event_id == "3"
    d.feed(b"id: 4\n")
    assert d.last_event_id == "3"
    assert d.feed(b"data: c\n\n") == [ServerSentEvent(data="c", id="4")]
    assert d.last_event_id == "4"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"3000", 3000), (b"0", 0), (b"", None), (b"12a", None), (b"-1", None),
     (b" 5", None), (b"1.5", None), ("\u0663".encode(), None), ("²".encode(), None)],
)
def test_retry_only_accepts_ascii_digits(value, expected):
    d = SSEDecoder()
    d.feed(b"retry: " + value + b"\n\n")
    assert d.retry == expected


def test_retry_keeps_last_valid_value_and_is_reported_on_its_event():
    d = SSEDecoder()
    events = d.feed(b"retry: 10\ndata: a\n\nretry: x\ndata: b\n\n")
    assert [e.retry for e in events] == [10, None]
    assert d.retry == 10


# -- rule 7: end of stream ---------------------------------------------------


def test_event_not_ended_by_blank_line_is_dropped():
    assert decode(b"data: a\n\ndata: b\n") == [ServerSentEvent(data="a")]
    assert decode(b"data: a\n\ndata: b") == [ServerSentEvent(data="a")]


def test_final_unterminated_line_is_still_a_line():
    d = SSEDecoder()
    d.feed(b"data: a\n\nretry: 7")
    assert d.retry is None
    assert d.close() == []
    assert d.retry == 7


def test_close_on_fresh_decoder():
    assert SSEDecoder().close() == []


# -- rule 8: no payload interpretation ---------------------------------------


def test_done_marker_and_json_are_plain_data():
    payload = '{"choices": [{"text": "hi"}]}'
    assert datas(f"data: {payload}\n\ndata: [DONE]\n\n".encode()) == [payload, "[DONE]"]


# -- iter_events and the fast path -------------------------------------------


def test_iter_events_yields_all_events():
    chunks = [b"data: a\n", b"\ndata: b\n\ndata: [DO", b"NE]\n\ndata: lost"]
    assert [e.data for e in iter_events(chunks)] == ["a", "b", "[DONE]"]
    assert list(iter_events([])) == []


def test_typical_completion_stream_in_big_chunks():
    payloads = [
        json.dumps({"id": "cmpl-1", "choices": [{"text": f" w{i}", "index": 0}]})
        for i in range(3000)
    ]
    stream = b"".join(f"data: {p}\n\n".encode() for p in payloads) + b"data: [DONE]\n\n"
    for size in (7, 4096, 65536):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert datas(*chunks) == payloads + ["[DONE]"]


def test_fast_and_slow_paths_interleave():
    stream = (
        b"data: a\n\nevent: e\ndata: b\n\ndata: c\r\n\r\n: c\ndata: d\n\n"
        b"id: 9\ndata: e\n\n\n\ndata: f\n\n"
    )
    expected = [("message", "a", ""), ("e", "b", ""), ("message", "c", ""),
                ("message", "d", ""), ("message", "e", "9"), ("message", "f", "9")]
    for size in (1, 2, 3, 5, 8, 13, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert [(e.event, e.data, e.id) for e in decode(*chunks)] == expected


def test_huge_single_line_across_many_chunks():
    big = b"x" * 1_000_000
    stream = b"data: " + big + b"\n\n"
    chunks = [stream[i : i + 1000] for i in range(0, len(stream), 1000)]
    assert datas(*chunks) == [big.decode()]


# -- property tests ----------------------------------------------------------


def reference(stream: bytes) -> tuple[list[ServerSentEvent], str, int | None]:
    """Obviously-correct spec transcription: decode the whole stream, split lines."""
    if stream.startswith(BOM):
        stream = stream[3:]
    lines = re.split(r"\r\n|\r|\n", stream.decode("utf-8", "replace"))
    last = lines.pop()  # text after the final line break ("" if none)
    if last:
        lines.append(last)  # an unterminated final line is still a line...
    events: list[ServerSentEvent] = []
    data_buf, event_type, id_buf, last_id, retry, ev_retry = "", "", "", "", None, None
    for line in lines:
        if line == "":  # dispatch
            last_id = id_buf
            if data_buf:
                events.append(
                    ServerSentEvent(event_type or "message", data_buf[:-1], id_buf, ev_retry)
                )
            data_buf, event_type, ev_retry = "", "", None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            value = value[1:] if value.startswith(" ") else value
        else:
            name, value = line, ""
        if name == "data":
            data_buf += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            id_buf = value
        elif name == "retry" and re.fullmatch(r"[0-9]+", value):
            retry = ev_retry = int(value)
    return events, last_id, retry  # ...but a pending event is never dispatched


def run(chunks: list[bytes]) -> tuple[list[ServerSentEvent], str, int | None]:
    d = SSEDecoder()
    events = [e for c in chunks for e in d.feed(c)]
    events += d.close()
    return events, d.last_event_id, d.retry


SPECIAL = ["a", "b", " ", ":", "0", "7", "é", "€", "😀", "\u2028", "\u2029", "\x85",
           "\0", "\ufeff", "[DONE]", '{"x": 1}']
values = st.one_of(
    st.lists(st.sampled_from(SPECIAL), max_size=6).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=8),
)
well_formed = st.tuples(
    st.sampled_from(["data", "data", "data", "event", "id", "retry"]),
    st.sampled_from([": ", ":"]),
    values,
)
odd = st.tuples(
    st.sampled_from(["data", "event", "id", "retry", "foo", "Data", "", ":"]),
    st.sampled_from([":  ", "", " : ", ":\t"]),
    values,
)
fixed = st.sampled_from(["data: hi", "data:", "data", "event: ping", "event", "id: 4", "id",
                         "retry: 100", "retry: x1", ": comment", "data: [DONE]"])
line_st = st.one_of(
    well_formed.map("".join), well_formed.map("".join), odd.map("".join), fixed, fixed
).map(str.encode)
garbage = st.sampled_from([b""] * 8 + [b"\xff", b"\xe2\x82", b"\xc3", b"\xf0\x9f\x98", b"\xef\xbb"])
eol = st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b"\r"])
line = st.tuples(line_st, garbage, eol).map(b"".join)
block = st.tuples(st.lists(line, max_size=4).map(b"".join), eol).map(b"".join)


@st.composite
def streams(draw) -> bytes:
    body = b"".join(draw(st.lists(block, max_size=10)))
    tail = draw(st.sampled_from([b"", b"data: cut", b"retry: 9", b"id: 5", b"data: x\n"]))
    prefix = draw(st.sampled_from([b"", BOM, BOM, b"\xef\xbb", BOM + BOM]))
    return prefix + body + tail


@st.composite
def splits(draw, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=200, deadline=None)
@given(stream=streams(), data=st.data())
def test_any_chunking_gives_same_events_as_whole_stream(stream, data):
    whole = run([stream])
    assert run(data.draw(splits(stream))) == whole
    assert run(bytewise(stream)) == whole


@settings(max_examples=200, deadline=None)
@given(stream=streams())
def test_decoder_matches_reference_implementation(stream):
    assert run([stream]) == reference(stream)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["message", "delta", "ping"]),
                  st.lists(values, min_size=1, max_size=3)),
        max_size=10,
    ),
    size=st.integers(1, 64),
)
def test_serialized_events_round_trip(events, size):
    stream = b"".join(
        (f"event: {name}\n" if name != "message" else "").encode()
        + b"".join(f"data: {line}\n".encode() for line in lines)
        + b"\n"
        for name, lines in events
    )
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    assert decode(*chunks) == [ServerSentEvent(name, "\n".join(lines)) for name, lines in events]


# -- one whole event per chunk (the shape servers flush, GUIDE 14: the decoder's fast path) -------


def test_one_event_per_chunk_fast_path_keeps_every_rule():
    chunks = [b"data: a\n\n", b"event: delta\ndata: b\n\n", b"id: 7\n\n", b"data: c\n\n", b"event: \ndata: d\n\n",
              b"data: \xff\xc3\n\n", b"data: e\n", b"data: f\n\n", b"retry: 5\n", b"data: g\n\n",
              b"event: x\n", b"data: h\n\n", b"data: [DONE]\n\n"]
    assert decode(*chunks) == decode(b"".join(chunks)) == [
        ServerSentEvent("message", "a"), ServerSentEvent("delta", "b"), ServerSentEvent("message", "c", "7"),
        ServerSentEvent("message", "d", "7"), ServerSentEvent("message", "\ufffd\ufffd", "7"),
        ServerSentEvent("message", "e\nf", "7"), ServerSentEvent("message", "g", "7", 5),
        ServerSentEvent("x", "h", "7"), ServerSentEvent("message", "[DONE]", "7")]


def test_one_event_per_chunk_after_a_bom_or_a_carried_part():
    assert decode(BOM + b"data: a\n\n", b"data: b\n\n") == [ServerSentEvent(data="a"), ServerSentEvent(data="b")]
    assert decode(b"dat", b"a: a\n\n", b"data: b\n\n") == [ServerSentEvent(data="a"), ServerSentEvent(data="b")]
    assert datas(b"data: a\r", b"data: b\n\n") == ["a\nb"]  # the CR ended "data: a" but dispatched nothing
    assert datas(b"data: a\r\r", b"data: b\n\n") == ["a", "b"]


def test_last_event_id_after_fast_path_events():
    d = SSEDecoder()
    d.feed(b"id: 1\ndata: a\n\n")
    d.feed(b"id: 2\n")
    assert d.last_event_id == "1"
    d.feed(b"\n")
    d.feed(b"data: b\n\n")
    assert d.last_event_id == "2"
    assert d.feed(b"event: e\ndata: c\n\n") == [ServerSentEvent("e", "c", "2")]


@settings(max_examples=200, deadline=None)
@given(stream=streams())
def test_chunks_cut_at_blank_lines_give_same_events_as_whole_stream(stream):
    pieces = re.split(rb"(?<=\n\n)", stream)
    assert run([p for p in pieces if p]) == run([stream])


def test_many_named_events_in_one_chunk_decode_as_one_by_one():
    blocks = [b"event: response.output_text.delta\ndata: {\"delta\": \"a\"}\n\n", b"event: \ndata: x\n\n",
              b"event: e\ndata: 1\ndata: 2\n\n", b"event: e\n\n", b"data: y\nevent: late\n\n", b"event: e\ndata:z\n\n",
              b"id: 3\nevent: e\ndata: w\n\n", b"event: e\ndata: v\n\n"]
    whole = b"data: first\n\n" + b"".join(blocks)
    assert decode(whole) == decode(b"data: first\n\n", *blocks) == [
        ServerSentEvent("message", "first"), ServerSentEvent("response.output_text.delta", '{"delta": "a"}'),
        ServerSentEvent("message", "x"), ServerSentEvent("e", "1\n2"), ServerSentEvent("late", "y"),
        ServerSentEvent("e", "z"), ServerSentEvent("e", "w", "3"), ServerSentEvent("e", "v", "3")]
