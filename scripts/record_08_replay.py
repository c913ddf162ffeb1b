"""Record notebooks/data/08_replay.jsonl: the call notebook 08's replay section answers from a file.

Run from the repository root with the offline model installed and no OPENAI_* settings:
``env -u OPENAI_API_KEY -u OPENAI_BASE_URL python scripts/record_08_replay.py``. The cell below must
stay identical to the notebook's (a replay answers identical requests only).
"""

from __future__ import annotations

from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

RECORDING = Path(__file__).resolve().parent.parent / "notebooks" / "data" / "08_replay.jsonl"
CELL = "%%complete --show-probs --max-tokens 12 -t 0\nName three colours."


def main() -> None:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_openai")
    shell.run_line_magic("complete_replay", f"record {RECORDING}")
    result = shell.run_cell(CELL)
    result.raise_error()
    shell.run_line_magic("complete_replay", "off")
    shell.run_line_magic("complete_local", "stop")


if __name__ == "__main__":
    main()
