"""Side-by-side comparisons: comma-separated option values expanded into calls, run concurrently.

``%%complete --compare -m a,b -t 0,1 --seed 1,2`` asks every combination (here 8). :func:`expand`
rewrites the magic's option words into one list of words per combination (each read as an
ordinary ``%%complete`` line, so every check applies), and :func:`run_all` runs calls on a few
threads at once through :func:`~jupyter_openai.calls.run.run_call` (so each is logged and priced) and
gives the outcomes back in the order of the combinations. No IPython here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from ..errors import ConfigurationError

#: The options whose values may be lists: their long names and every spelling of each.
COMPARED = {"model": ("-m", "--model"), "temperature": ("-t", "--temperature"), "seed": ("--seed",)}
MAX_COMBINATIONS = 64
MAX_WORKERS = 4  #: calls in flight at once


class Combination(NamedTuple):
    """One call of a comparison: the option words to read, and the compared values it takes."""

    argv: list[str]
    values: dict[str, str]


def _values(name: str, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ConfigurationError(f"--compare: {COMPARED[name][-1]} {text!r} has an empty value (write a,b,c)")
    return list(dict.fromkeys(items))  # a value given twice is asked once


def expand(argv: Sequence[str], actions: Mapping[str, Any]) -> list[Combination]:
    """One :class:`Combination` per combination of the comma-separated values of ``-m``, ``-t`` and
    ``--seed`` in ``argv`` (option words, as ``split_options`` gives them; ``actions`` the parser's
    option strings). ``--compare`` itself is dropped."""
    spelling = {flag: name for name, flags in COMPARED.items() for flag in flags}
    template: list[str | tuple[str, str]] = []  # words, and (name, flag) slots for compared values
    lists: dict[str, list[str]] = {}
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--compare":
            continue
        flag, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if not word.startswith("--") and word[:2] in spelling and len(word) > 2:
            flag, inline = word[:2], word[2:]  # -t0,1
        name = spelling.get(flag)
        action = actions.get(flag)
        takes_value = action is not None and action.nargs != 0
        if name is None:
            template.append(word)
            if takes_value and not inline and "=" not in word and i < len(words):
                template.append(words[i])  # another option's value: kept as written
                i += 1
            continue
        if not inline:
            if i >= len(words):
                raise ConfigurationError(f"--compare: {flag} needs a value")
            inline = words[i]
            i += 1
        lists[name] = _values(name, inline)
        template.append((name, flag))
    names = list(lists)
    combos = list(itertools.product(*(lists[name] for name in names))) if names else [()]
    if len(combos) > MAX_COMBINATIONS:
        raise ConfigurationError(f"--compare: {len(combos)} combinations is too many (at most {MAX_COMBINATIONS})")
    found = []
    for combo in combos:
        chosen = dict(zip(names, combo, strict=True))
        line: list[str] = []
        for part in template:
            if isinstance(part, tuple):
                line += [part[1], chosen[part[0]]]
            else:
                line.append(part)
        found.append(Combination(line, chosen))
    return found


def run_all(calls: Sequence[Callable[[], Any]], workers: int = MAX_WORKERS) -> list[Any]:
    """Run ``calls`` with at most ``workers`` at once; their results in the order given."""
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls))), thread_name_prefix="compare") as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def rows(combinations: Sequence[Combination], outcomes: Sequence[Any]) -> list[dict[str, Any]]:
    """One flat row per call for the grid and the DataFrame: the compared values, then what came back."""
    table = []
    for combination, outcome in zip(combinations, outcomes, strict=True):
        record = outcome.record
        table.append({
            **{name: combination.values.get(name) for name in COMPARED if any(name in c.values for c in combinations)},
            "answer": outcome.text,
            "model_answered": record.get("model"),
            "prompt_tokens": record.get("prompt_tokens"),
            "completion_tokens": record.get("completion_tokens"),
            # a stream's pieces when the server did not count (the grid shows it as an estimate)
            "completion_tokens_estimated": outcome.streamed_pieces if record.get("completion_tokens") is None
            and outcome.streamed_pieces else None,
            "latency": record.get("latency"),
            "cost_usd": record.get("cost_usd"),
            "status": outcome.status,
            "error": record.get("error"),
            "log_id": record.get("id"),
        })
    return table


__all__ = ["COMPARED", "Combination", "expand", "rows", "run_all"]
