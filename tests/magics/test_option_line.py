"""The option line of every magic that reads one (``%%complete``, ``%%chat``, ``%%complete_batch``) in a
real shell against the test server: an unbalanced quote and a ``-i`` value whose formatting raises are
one-line ``UsageError``s before any request, never text sent nor a traceback."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_openai.session.log import session_log
from tests.servers.fake import FakeOpenAIServer

BROKEN = '''
class Broken:
    def __format__(self, spec):
        raise RuntimeError("no format for you")
    def __repr__(self):
        raise ValueError("no repr either")
broken = Broken()
rows = [{"a": "x"}]
'''


def refused(shell: InteractiveShell, cell: str) -> str:
    """The one line a cell fails with (no traceback shown, nothing sent, nothing logged)."""
    with capture_output() as cap, pytest.raises(UsageError) as caught:
        shell.run_cell(cell)
    message = str(caught.value).strip()
    assert "\n" not in message and "Traceback" not in cap.stdout + cap.stderr
    return message


@pytest.mark.parametrize("cell", [
    '%%complete -s "unterminated\nhello',
    '%complete -s "unterminated hello there',
    "%%complete -m fake-chat --system='half\nhello",
    '%%chat -s "unterminated\nhello',
    '%%complete_batch rows -s "unterminated\n{a}',
])
def test_an_unbalanced_quote_is_one_line_before_any_request(shell: InteractiveShell, server: FakeOpenAIServer,
                                                             cell: str) -> None:
    shell.run_cell(BROKEN)
    message = refused(shell, cell)
    assert "unbalanced" in message and ("-s" in message or "--system" in message)
    assert server.requests == [] and len(session_log) == 0


def test_balanced_quotes_still_read_as_one_value(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    with capture_output():
        shell.run_cell("%%complete -s \"it's fine\" --stop 'a \"b\"'\nhello")
    body = server.requests[-1].body
    assert body["messages"][0] == {"role": "system", "content": "it's fine"} and body["stop"] == ['a "b"']


@pytest.mark.parametrize(("cell", "words"), [
    ("%%complete -i\nHello {broken}", "formatting {broken} raised RuntimeError: no format for you"),
    ("%%complete -i\nHello {broken!r}", "converting {broken} raised ValueError: no repr either"),
    ("%%complete -i\nHello {broken.name}", "reading {broken.name} raised AttributeError"),
    ("%%chat -i\nHello {broken:>{width}}", "formatting {broken} raised RuntimeError"),
])
def test_a_value_whose_formatting_raises_is_one_line_naming_the_field(shell: InteractiveShell,
                                                                       server: FakeOpenAIServer, cell: str,
                                                                       words: str) -> None:
    shell.run_cell(BROKEN + "width = 9\n")
    assert words in refused(shell, cell)
    assert server.requests == [] and len(session_log) == 0
