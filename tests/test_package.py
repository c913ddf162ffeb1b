"""The package's floors, checked folder by folder (README, "Development").

A module imports only its own folder or a floor below it; lazy imports inside functions and imports
under ``TYPE_CHECKING`` count as much as the ones at the top. IPython, ipywidgets and traitlets live
only in display/, widgets/ and magics/; requests and urllib3 only in transport/ and the client. The
front ends (widgets/, magics/) build no request and word no outcome. No module imports one that
imports it back, each has a docstring and a readable size, and each subpackage's ``__init__`` only
re-exports, lazily.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_openai"
NAME = PACKAGE.name
MAX_LINES = 400

#: The floors, lowest first. A "room" is a subpackage or a module of the top folder; rooms on one
#: floor share it without importing each other (``base`` is one room of five small modules).
FLOORS: list[set[str]] = [
    {"base"},
    {"api"},
    {"transport", "session"},
    {"client", "offline"},
    {"calls"},
    {"batch"},
    {"display"},
    {"widgets"},
    {"magics"},
]
BASE = {"errors", "secret", "config", "version", "lazy", "markdown"}
FLOOR = {room: number for number, rooms in enumerate(FLOORS) for room in rooms}
FRONT_ENDS = {"widgets", "magics"}
#: Third-party packages allowed only in some rooms.
ONLY_IN = {
    "IPython": {"display", "widgets", "magics"},
    "ipywidgets": {"display", "widgets", "magics"},
    "traitlets": {"display", "widgets", "magics"},
    "requests": {"transport", "client"},
    "urllib3": {"transport", "client"},
}


def _modules() -> list[str]:
    """Every module of the package as a dotted name below it (``api.params``, ``client``, ``__init__``)."""
    return sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py"))


def _path(module: str) -> Path:
    return PACKAGE / (module.replace(".", "/") + ".py")


def room(module: str) -> str:
    """The room a module lives in: its subpackage, ``base`` for the base modules, else the module itself."""
    first = module.split(".")[0]
    if "." in module:
        return first
    return "base" if first in BASE else first


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The package modules (dotted, below the package) an ``import from`` statement reaches."""
    if node.level:
        base = module.split(".")[:-1]  # the module's folder (for an __init__, its own package)
        base = base[: len(base) - (node.level - 1)]
    elif (node.module or "") == NAME or (node.module or "").startswith(NAME + "."):
        base = []
    else:
        return []
    target = [*base, *(node.module.split(".") if node.module else [])]
    if not node.level:
        target = target[1:]  # drop the package's own name
    found = []
    for alias in node.names:
        candidate = ".".join([*target, alias.name])
        if _path(candidate).exists() or (PACKAGE / candidate.replace(".", "/") / "__init__.py").exists():
            found.append(candidate)
        else:
            found.append(".".join(target) or "__init__")
    return found


def imports(module: str) -> tuple[set[str], set[str]]:
    """(package modules, third-party top-level names) that ``module`` imports anywhere in its code."""
    tree = ast.parse(_path(module).read_text("utf-8"))
    inside: set[str] = set()
    outside: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            reached = _resolve(module, node)
            inside.update(reached)
            if not reached and not node.level:
                outside.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == NAME or alias.name.startswith(NAME + "."):
                    inside.add(alias.name.removeprefix(NAME + ".") if alias.name != NAME else "__init__")
                else:
                    outside.add(alias.name.split(".")[0])
    return {m.removesuffix(".__init__") for m in inside} - {module}, outside


def _layer_violations(module: str, reached: set[str]) -> list[str]:
    mine = room(module)
    wrong = []
    for target in reached:
        theirs = room(target) if target != "__init__" else "top"
        if theirs == mine:
            continue
        if theirs == "top" or FLOOR[theirs] >= FLOOR[mine]:
            wrong.append(f"{module} ({mine}, floor {FLOOR[mine]}) imports {target} ({theirs})")
    return wrong


MODULES = [m for m in _modules() if m != "__init__"]


def test_every_room_has_a_floor() -> None:
    assert {room(m) for m in MODULES} == set(FLOOR), "a new room needs a floor in FLOORS (and the README)"


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_only_its_own_folder_or_lower_floors(module: str) -> None:
    reached, _ = imports(module)
    assert not _layer_violations(module, reached)


@pytest.mark.parametrize("module", MODULES)
def test_front_end_libraries_and_http_stay_in_their_rooms(module: str) -> None:
    _, outside = imports(module)
    wrong = {name for name in outside if name in ONLY_IN and room(module) not in ONLY_IN[name]}
    assert not wrong, f"{module} imports {sorted(wrong)}, allowed only in {[sorted(ONLY_IN[n]) for n in wrong]}"


def test_the_rules_catch_a_violation() -> None:
    """The checks above fail on a module that breaks them (so they are not vacuous)."""
    assert _layer_violations("api.params", {"calls.request"})  # up a floor
    assert _layer_violations("transport.stream", {"session.log"})  # sideways, another room on the floor
    assert _layer_violations("widgets.form", {"magics.complete"})  # widgets never import magics
    assert not _layer_violations("magics.chat", {"magics.configurable", "calls.run", "base"})
    tree = ast.parse("def f():\n    from ..calls.request import build_request\n")
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _resolve("api.params", node) == ["calls.request"]
    assert _layer_violations("api.params", set(_resolve("api.params", node)))


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {m: imports(m)[0] for m in _modules()}
    circles = []
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            name = stack.pop()
            if name == start:
                circles.append(start)
                break
            if name not in seen:
                seen.add(name)
                stack.extend(graph.get(name, ()))
    assert not circles, f"modules on an import circle: {sorted(circles)}"


@pytest.mark.parametrize("module", _modules())
def test_modules_have_a_docstring_and_a_readable_size(module: str) -> None:
    text = _path(module).read_text("utf-8")
    assert ast.get_docstring(ast.parse(text)), f"{module} has no module docstring"
    assert text.count("\n") <= MAX_LINES, f"{module} has {text.count(chr(10))} lines"


@pytest.mark.parametrize("package", sorted(room for room in FLOOR if (PACKAGE / room).is_dir()))
def test_a_subpackage_init_only_reexports_lazily(package: str) -> None:
    """Nothing at the top of a subpackage's ``__init__`` but its docstring, the lazy-export helper,
    ``__all__`` and the ``__getattr__``/``__dir__`` pair it makes."""
    tree = ast.parse((PACKAGE / package / "__init__.py").read_text("utf-8"))
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    for node in body:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 2 and node.module == "lazy", ast.unparse(node)
        elif isinstance(node, ast.Assign):
            names = [ast.unparse(t) for t in node.targets]
            assert names in (["__all__"], ["(__getattr__, __dir__)"], ["__getattr__, __dir__"]), names
        else:
            pytest.fail(f"{package}/__init__.py does more than re-export: {ast.unparse(node)[:80]}")


#: Keys only a request body has (the options a front end passes on are named as the user names them).
BODY_KEYS = {"messages", "input", "max_completion_tokens", "max_output_tokens", "stream_options", "response_format"}
#: The client's methods that send: the front ends call calls.run.run_call instead.
SENDING = {"chat", "completions", "responses", "chat_stream", "completions_stream", "responses_stream"}


def _front_end_problems(path: Path) -> list[str]:
    text = path.read_text("utf-8")
    problems = []
    if "CallRequest(" in text or "choose_endpoint(model, endpoint" in text:
        problems.append("builds its own request")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if keys & BODY_KEYS:
                problems.append(f"writes a request body ({sorted(keys & BODY_KEYS)})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SENDING:
            if "client" in ast.unparse(node.func.value):
                problems.append(f"sends itself: {ast.unparse(node.func)}")
    for phrase in ("partial text kept", "without [DONE]", "choices, the server returned"):
        if phrase in text:
            problems.append(f"words an outcome note itself: {phrase!r}")
    return problems


@pytest.mark.parametrize("path", sorted([*(PACKAGE / "widgets").glob("*.py"), *(PACKAGE / "magics").glob("*.py")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_front_ends_build_no_request_and_word_no_outcome(path: Path) -> None:
    """widgets/ and magics/ delegate to calls/: no CallRequest(...) of their own, no request body,
    no client call that sends, no outcome wording."""
    assert not _front_end_problems(path)


def test_the_front_end_check_catches_a_body(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def f(client):\n    body = {"model": "m", "messages": []}\n    return client.chat(body)\n')
    assert len(_front_end_problems(bad)) == 2
