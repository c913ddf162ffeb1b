"""The magics' help and parsers, built on first use (issue 20, item 5).

``%load_ext`` builds no argparse parser and formats no help: each magic's parser, and the help
IPython writes into its docstring, are built the first time a call, ``%%complete?``, Shift-Tab
(``object_inspect``) or anything else asks. The help is still whole: every option, the same text
as the parser's ``format_help()``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core import magic_arguments as ipython_arguments
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jupyter_openai.session.conversation import conversations
from tests.support.cells import run

#: Every magic the extension registers, with the prefix its help is asked with; all but
#: %complete_config and %complete_key (which take no options) have a parser.
MAGICS = {"%%complete": "CompleteMagics", "%complete": "CompleteMagics", "%complete_log": "CompleteMagics",
          "%complete_models": "CompleteMagics", "%complete_form": "CompleteMagics",
          "%complete_local": "CompleteMagics", "%complete_config": "CompleteMagics", "%%chat": "ChatMagics",
          "%chat": "ChatMagics", "%chat_history": "ChatMagics", "%complete_replay": "LabMagics",
          "%%complete_batch": "BatchMagics", "%complete_key": "KeyMagics"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _magic(shell: InteractiveShell, name: str) -> object:
    found = shell.find_cell_magic(name[2:]) if name.startswith("%%") else shell.find_line_magic(name[1:])
    assert found is not None, name
    return found


def _options(parser: object) -> list[str]:
    return [flag for action in parser._actions for flag in action.option_strings]  # type: ignore[attr-defined]


def test_every_magic_of_the_extension_is_listed(shell: InteractiveShell) -> None:
    registered = {("%%" if kind == "cell" else "%") + name
                  for cls in set(MAGICS.values()) for kind, names in shell.magics_manager.registry[cls].magics.items()
                  for name in names}
    assert registered == set(MAGICS)


@pytest.mark.parametrize("name", sorted(set(MAGICS) - {"%complete_config", "%complete_key"}))
def test_the_help_is_the_parsers_whole_help(shell: InteractiveShell, name: str) -> None:
    magic = _magic(shell, name)
    parser = magic.parser  # type: ignore[attr-defined]
    whole = parser.format_help()
    assert magic.__doc__ == whole  # what IPython's own @magic_arguments writes into the docstring
    assert whole.startswith(f"::\n\n  %{name.lstrip('%')} ")  # the usage line first
    assert parser._actions
    for action in parser._actions:  # each option and each positional argument, with its help
        shown_as = "{" + ",".join(action.choices) + "}" if action.choices else action.metavar or action.dest
        for flag in action.option_strings or [shown_as]:
            assert re.search(rf"(^|[\s\[,]){re.escape(flag)}(?![\w-])", whole, re.M), (name, flag)
        assert action.help and " ".join(action.help.split())[:40] in " ".join(whole.split()), (name, action.dest)
    # %%complete? / %chat? (pinfo) and Shift-Tab (the kernel's inspect_request: object_inspect_mime on the token
    # at the cursor, the name without its %) show it whole
    for asked in (name, name.lstrip("%")):
        assert whole.strip() in ANSI.sub("", shell.object_inspect_mime(asked)["text/plain"]), asked
    assert shell.object_inspect(name)["found"]
    shown = run(shell, f"{name}?").stdout
    assert whole.strip() in ANSI.sub("", shown)


def test_complete_config_keeps_its_docstring(shell: InteractiveShell) -> None:
    shown = ANSI.sub("", shell.object_inspect_mime("%complete_config")["text/plain"])
    assert "Show each setting (key masked) with where it comes from" in shown


def test_chat_lists_what_complete_lists(shell: InteractiveShell) -> None:
    chat, complete = _options(_magic(shell, "%%chat").parser), _options(_magic(shell, "%%complete").parser)
    shared = set(complete) - {"--echo", "--suffix", "-n", "--show-probs", "--compare"}
    assert shared <= set(chat)
    assert {"--name", "--reset", "--max-turns", "--token-budget"} <= set(chat)


def test_options_are_parsed_on_a_real_shell(shell: InteractiveShell, tmp_path: Path) -> None:
    assert ipython_arguments.parse_argstring(_magic(shell, "%complete_log"), "-n 3 --full").last == 3
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        shell.run_line_magic("complete_log", "--bogus")
    with pytest.raises(UsageError, match="invalid choice"):
        shell.run_line_magic("complete_local", "restart")
    conversations.pop("default")
    conversation = shell.run_line_magic("chat_history", "")  # no name given: the default conversation
    assert conversation.name == "default" and conversations["default"] is conversation
    shell.run_line_magic("chat", "--name tutor --system 'Be brief.'")
    assert conversations["tutor"].system == "Be brief." and not conversations["tutor"].turns
    saved = tmp_path / "tutor.json"
    assert "Saved 0 turn(s) of conversation 'tutor'" in run(shell, f"%chat_history tutor --save {saved}").stdout
    assert json.loads(saved.read_text())
    with pytest.raises(UsageError, match="argument --max-turns: invalid int value"):
        shell.run_line_magic("chat", "--max-turns many")
    conversations.pop("tutor")


#: Built at load they would be visible here: one MagicArgumentParser per magic, its prog the magic's name.
LOAD_CHECK = """\
import argparse, gc, json, sys
from IPython.core.interactiveshell import InteractiveShell

names = %r

def parsers():
    return sorted(p.prog for p in gc.get_objects() if isinstance(p, argparse.ArgumentParser) and p.prog in names)

ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "jupyter_openai")
at_load = parsers()
call_only = [m for m in ("IPython.core.magic_arguments", "jupyter_openai.calls.line", "jupyter_openai.calls.request",
                         "jupyter_openai.session.conversation", "jupyter_openai.session.log") if m in sys.modules]
ip.find_cell_magic("chat").__doc__  # the help asked for (%%chat?, Shift-Tab): that parser only
after_help = parsers()
ip.run_line_magic("complete_log", "-n 1")  # a call
print(json.dumps({"at_load": at_load, "call_only": call_only, "after_help": after_help, "after_call": parsers()}))
"""


def test_load_builds_no_parser_and_first_use_builds_one(tmp_path: Path) -> None:
    names = sorted({name.lstrip("%") for name in MAGICS})
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}
    done = subprocess.run([sys.executable, "-c", LOAD_CHECK % names], capture_output=True, text=True, env=env,
                          timeout=60, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["at_load"] == []
    assert got["call_only"] == []  # modules only a call needs are not imported by %load_ext
    assert got["after_help"] == ["chat"]
    assert got["after_call"] == ["chat", "complete_log"]
