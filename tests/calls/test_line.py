"""Reading and writing a %%complete line: options vs prompt, quotes, escapes, interpolation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_openai.calls.line import escape, interpolate, quote, split_options, unescape
from jupyter_openai.errors import ConfigurationError
from jupyter_openai.magics.complete import CompleteMagics

ACTIONS = CompleteMagics.complete.parser._option_string_actions


@pytest.mark.parametrize(
    ("line", "argv", "rest"),
    [
        ("-m gpt-4o -t 0.5", ["-m", "gpt-4o", "-t", "0.5"], ""),
        ("-t0.5 --max-tokens=9 Say hi", ["-t0.5", "--max-tokens=9"], "Say hi"),
        ('-s "be brief" What\'s up?', ["-s", "be brief"], "What's up?"),
        ("--echo -e completions  spaced   prompt ", ["--echo", "-e", "completions"], "spaced   prompt"),
        ("-- -not an option", [], "-not an option"),
        ("plain prompt -t 3", [], "plain prompt -t 3"),
        ("", [], ""),
    ],
)
def test_split_options(line: str, argv: list[str], rest: str) -> None:
    assert split_options(line, ACTIONS) == (argv, rest)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigurationError, match="unknown option '--temprature'"):
        split_options("--temprature 1 hi", ACTIONS)


@given(st.text())
def test_escape_then_unescape_gives_the_text_back(text: str) -> None:
    assert unescape(escape(text)) == text
    assert "\n" not in escape(text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1).filter(lambda t: t.strip() == t and t))
def test_a_quoted_value_reads_back_as_one_option_value(value: str) -> None:
    line = f"-s {quote(escape(value))} the prompt"
    argv, rest = split_options(line, ACTIONS)
    assert argv[0] == "-s" and unescape(argv[1]) == value
    assert rest == "the prompt"


def test_interpolate_fills_names_and_keeps_escaped_braces() -> None:
    assert interpolate("{a} and {{b}} {c[0]}", {"a": 1, "c": "xyz"}) == "1 and {b} x"


def test_interpolate_names_the_missing_variable() -> None:
    with pytest.raises(ConfigurationError, match="name 'missing' is not defined"):
        interpolate("hello {missing}", {})


def test_interpolate_rejects_positional_fields() -> None:
    with pytest.raises(ConfigurationError, match="cannot fill the prompt"):
        interpolate("a {} b", {})


def test_an_unknown_option_close_to_a_known_one_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown option '--temprature' \(did you mean --temperature\?\)"):
        split_options("--temprature 1 hi", ACTIONS)
    with pytest.raises(ConfigurationError) as info:
        split_options("--zzzz 1 hi", ACTIONS)
    assert "did you mean" not in str(info.value)


def test_unfilled_names_are_the_fields_naming_variables() -> None:
    from jupyter_openai.calls.line import unfilled_names

    namespace = {"topic": "owls", "n": 3}
    assert unfilled_names("Tell me about {topic} in {n} lines, {unknown}, {{topic}}, {0}", namespace) == ["n", "topic"]
    assert unfilled_names("no fields {", namespace) == []


@pytest.mark.parametrize(("line", "words"), [
    ('-s "unterminated', "-s: the value '\"unterminated' has an unbalanced \""),
    ("-s 'half open words", "-s: the value \"'half\" has an unbalanced '"),
    ('--system="open', "the option '--system=\"open' has an unbalanced \""),
    ('-s "ok"x" prompt', "unbalanced"),
])
def test_an_unbalanced_quote_in_the_options_is_a_mistake(line: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        split_options(line, ACTIONS)
    assert words in str(info.value)


def test_quotes_in_the_prompt_part_are_text() -> None:
    assert split_options("-t 0 don't \"stop", ACTIONS) == (["-t", "0"], "don't \"stop")


def test_interpolate_names_the_field_whose_value_cannot_be_formatted() -> None:
    class Odd:
        def __format__(self, spec: str) -> str:
            raise RuntimeError("nope")

    with pytest.raises(ConfigurationError, match=r"formatting \{odd\} raised RuntimeError: nope"):
        interpolate("{w} {odd:>{w}}", {"odd": Odd(), "w": 3})


def test_an_option_variable_whose_str_raises_is_one_line() -> None:
    from jupyter_openai.calls.line import option_value

    class Odd(float):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    with pytest.raises(ConfigurationError, match=r"\$t: the variable 't' cannot be written as text: RuntimeError"):
        option_value("$t", {"t": Odd(0.5)})
