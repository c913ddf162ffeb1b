"""The ``?`` input cleanup: real ``%complete … ?`` lines are kept as prompts, nothing else is touched."""

from __future__ import annotations

import pytest

from jupyter_openai.magics.questions import keep_question_prompts

CALL = "get_ipython().run_line_magic('complete', 'What is the capital of France?')\n"


@pytest.mark.parametrize("lines, expected", [
    (["%complete What is the capital of France?\n"], [CALL]),
    (["x = 1\n", "%complete What is the capital of France?\n"], ["x = 1\n", CALL]),
    (["if True:\n", "    %complete What is the capital of France?\n"], ["if True:\n", "    " + CALL]),
    (["%complete?\n"], ["%complete?\n"]),  # the help request itself
])
def test_magic_lines_ending_in_a_question_mark_become_calls(lines: list[str], expected: list[str]) -> None:
    assert keep_question_prompts(lines) == expected


@pytest.mark.parametrize("lines", [
    ['text = """\n', "%complete What is the capital of France?\n", '"""\n'],  # inside a triple-quoted string
    ["text = '''a\n", "%complete Why?\n", "'''\n"],
    ["x = 1 + \\\n", "%complete What?\n"],  # after a backslash continuation
    ["values = (1,\n", "%complete What?\n", ")\n"],  # inside an open bracket
    ["%%complete\n", "%complete What?\n"],  # a cell magic's body is text
])
def test_lines_that_are_not_magic_lines_are_left_alone(lines: list[str]) -> None:
    assert keep_question_prompts(lines) == lines


def test_the_shell_sends_a_question_and_leaves_strings_alone(shell, server) -> None:
    shell.run_cell("%complete What is the capital of France?")
    assert server.requests[-1].body["messages"][-1]["content"] == "What is the capital of France?"
    shell.run_cell('text = """\n%complete not a magic?\n"""')
    assert shell.user_ns["text"] == "\n%complete not a magic?\n" and len(server.requests) == 1
