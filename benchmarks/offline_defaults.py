"""The offline model's sampling defaults, chosen by measurement (issue 22, item 8).

    python benchmarks/offline_defaults.py [--seeds 10] [--first-seed 0] [--only 'LABEL|LABEL'] [--out answers.json]

Starts the bundled model (``jupyter_openai.offline.server.LocalServer``, SmolLM2-135M-Instruct) and asks
it, for every candidate setting and every seed, three fixed tasks through the project's client on
``/v1/chat/completions`` (not streamed):

* **recall**: turn 1 "Hi! My name is NAME. ..." (a name per seed), turn 2 (with turn 1 and the
  model's own answer as history) "What is my name?": passes when the answer holds NAME;
* **code**: "Reply with one line of Python that reverses the string s.": passes when the answer
  holds ``[::-1]`` or ``reversed(``;
* **fact**: "What is the capital of France?": passes when the answer holds "Paris";

and every answer is checked for being **clean**: English-looking text (at most 2 % of its characters
outside ASCII, no emoji, not empty). A setting's score is the mean of the four pass rates. Settings
are what a user can change: temperature, top_p, the llama-cpp-python server's ``repeat_penalty``
(sent as an extra body field; the server's defaults are temperature 0.8, top_p 0.95,
repeat_penalty 1.1) and the system message. Prints a Markdown table (best first); ``--out`` keeps
every answer as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NAMES = ("Priya", "Tomas", "Amara", "Jonas", "Mei", "Lars", "Aisha", "Kofi", "Elena", "Ravi")
SYSTEM = ("You are a helpful assistant. Answer in English, briefly. Remember what the user tells you "
          "about themselves and use it when asked.")
SHORT = "You are a helpful assistant. Answer in English."
CODE = "Reply with one line of Python that reverses the string s."
FACT = "What is the capital of France?"

#: (label, temperature, top_p, repeat_penalty, system): None = not sent (the server's default).
CANDIDATES: list[tuple[str, float | None, float | None, float | None, str | None]] = [
    ("server defaults (0.8 / 0.95 / 1.1), no system", None, None, None, None),
    ("server defaults, system message", None, None, None, SYSTEM),
    ("t 0.6, top_p 0.9", 0.6, 0.9, None, None),
    ("t 0.4, top_p 0.9", 0.4, 0.9, None, None),
    ("t 0.2, top_p 0.9", 0.2, 0.9, None, None),
    ("t 0.0", 0.0, None, None, None),
    ("t 0.2, top_p 0.9, system", 0.2, 0.9, None, SYSTEM),
    ("t 0.4, top_p 0.9, system", 0.4, 0.9, None, SYSTEM),
    ("t 0.2, top_p 0.9, short system", 0.2, 0.9, None, SHORT),
    ("t 0.2, top_p 0.9, repeat 1.0", 0.2, 0.9, 1.0, None),
    ("t 0.2, top_p 0.9, repeat 1.3", 0.2, 0.9, 1.3, None),
    ("t 0.2, top_p 0.5", 0.2, 0.5, None, None),
    ("t 0.2, top_p 1.0", 0.2, 1.0, None, None),
    ("t 0.2 (top_p: the server's 0.95)", 0.2, None, None, None),
    ("t 0.3 (top_p: the server's 0.95)", 0.3, None, None, None),
]


def clean(text: str) -> bool:
    """English-looking: not empty, at most 2 % non-ASCII characters, no emoji or pictographs."""
    text = text.strip()
    if not text:
        return False
    if any(ord(c) >= 0x2190 and not 0x2000 <= ord(c) <= 0x206F for c in text):  # arrows, symbols, emoji, CJK
        return False
    return sum(ord(c) > 127 for c in text) <= 0.02 * len(text)


def ask(client: Any, messages: list[dict[str, str]], setting: tuple[Any, ...], seed: int, max_tokens: int) -> str:
    _, temperature, top_p, repeat, system = setting
    params: dict[str, Any] = {"seed": seed, "max_tokens": max_tokens}
    if temperature is not None:
        params["temperature"] = temperature
    if top_p is not None:
        params["top_p"] = top_p
    head = [{"role": "system", "content": system}] if system else []
    extra = {"repeat_penalty": repeat} if repeat is not None else None
    return client.chat("smollm2-135m", head + messages, extra_body=extra, **params).text


def run_setting(client: Any, setting: tuple[Any, ...], seeds: range) -> dict[str, Any]:
    """Every task for every seed; pass rates and the answers."""
    passes = {"recall": 0, "code": 0, "fact": 0, "clean": 0}
    answers, count = [], 0
    for seed in seeds:
        name = NAMES[seed % len(NAMES)]
        first = f"Hi! My name is {name}. I am learning Python."
        greeting = ask(client, [{"role": "user", "content": first}], setting, seed, 48)
        history = [{"role": "user", "content": first}, {"role": "assistant", "content": greeting}]
        recall = ask(client, [*history, {"role": "user", "content": "What is my name?"}], setting, seed, 32)
        code = ask(client, [{"role": "user", "content": CODE}], setting, seed, 48)
        fact = ask(client, [{"role": "user", "content": FACT}], setting, seed, 32)
        passes["recall"] += name.lower() in recall.lower()
        passes["code"] += "[::-1]" in code or "reversed(" in code
        passes["fact"] += "paris" in fact.lower()
        for text in (greeting, recall, code, fact):
            passes["clean"] += clean(text)
            count += 1
        answers.append({"seed": seed, "greeting": greeting, "recall": recall, "code": code, "fact": fact})
    rates = {k: v / (count if k == "clean" else len(seeds)) for k, v in passes.items()}
    return {"label": setting[0], "temperature": setting[1], "top_p": setting[2], "repeat_penalty": setting[3],
            "system": setting[4], **rates, "score": sum(rates.values()) / len(rates), "answers": answers}


def table(results: list[dict[str, Any]]) -> str:
    """The Markdown table of the results, best score first."""
    lines = ["| setting | recall | code | fact | clean | score |", "|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: -r["score"]):
        lines.append(f"| {r['label']} | {r['recall']:.0%} | {r['code']:.0%} | {r['fact']:.0%} | {r['clean']:.0%} "
                     f"| {r['score']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from jupyter_openai.client import OpenAIClient
    from jupyter_openai.config import Settings
    from jupyter_openai.offline.server import LocalServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--only", help="run only these candidates: their labels, separated by '|'")
    parser.add_argument("--out", type=Path, help="write every answer to this JSON file")
    args = parser.parse_args(argv)
    candidates = [c for c in CANDIDATES if not args.only or c[0] in args.only.split("|")]
    results = []
    started = time.monotonic()
    with LocalServer() as server:
        settings = Settings(api_key=server.api_key, base_url=server.base_url, max_retries=0, read_timeout=120,
                            direct=True)
        with OpenAIClient(settings) as client:
            for setting in candidates:
                t0 = time.monotonic()
                result = run_setting(client, setting, range(args.first_seed, args.first_seed + args.seeds))
                results.append(result)
                print(f"{setting[0]}: score {result['score']:.2f} (recall {result['recall']:.0%}, code "
                      f"{result['code']:.0%}, fact {result['fact']:.0%}, clean {result['clean']:.0%}) "
                      f"in {time.monotonic() - t0:.0f} s", flush=True)
    elapsed = time.monotonic() - started
    print(f"\n{len(candidates)} settings x {args.seeds} seeds (from {args.first_seed}) x 4 calls in {elapsed:.0f} s\n")
    print(table(results))
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
