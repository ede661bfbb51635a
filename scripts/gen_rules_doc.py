"""Write docs/rules.md from flowctl.lint.codes and the lint fixtures.

Each rule's bad example is tests/fixtures/invalid/<CODE>-<name>.yaml, what
flowctl says about it is the .out file beside it, and the good example is
tests/fixtures/valid/<CODE>-<name>.yaml. tests/test_docs.py fails when the
page is out of date: run `python scripts/gen_rules_doc.py` to refresh it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowctl.lint.codes import RULES  # noqa: E402

FIX = ROOT / "tests" / "fixtures"

NOTES = {
    "FL001": "Files over 1 MiB are refused before parsing; a real definition is far smaller. "
    "Split the process, or remove generated content.",
    "FL007": "More than 64 levels of nesting is refused as soon as it is seen, so a "
    "100,000-deep document cannot exhaust the parser.",
    "FL013": "The path exists but cannot be read (a folder given where a file was expected, "
    "no permission). `flowctl lint` exits 2.",
    "FL014": "After 50 problems in one file the loader stops listing them.",
    "FL015": "More than 200,000 values in one file is refused: no real definition is that "
    "large.",
    "FL224": "Two files define the same process `id`: the first one (in path order) is "
    "used; the second gets this error at its `id`. Give each process its own id.",
    "FL404": "No org directory was found: neither an `org` file among the linted files, "
    "nor `org.yaml` beside them, nor `--org PATH`. References to users, roles and "
    "departments are not checked. A warning: `--strict` turns it into a failure.",
    "FL406": "Two files among the linted ones have `kind: org`. Keep one org directory per "
    "set of processes.",
}


def _fence(lang: str, text: str) -> str:
    return f"```{lang}\n{text.rstrip()}\n```\n"


def _read(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1") + "\n# (this file is saved as Latin-1, not UTF-8)"


def render() -> str:
    out = [
        "# Lint rules\n",
        "Every diagnostic has a stable code. `FL0xx` come from reading the YAML, `FL1xx` from "
        "the JSON Schema, `FL2xx` are rules over a process, `FL3xx` are about conditions and "
        "`FL4xx` about the org directory. Errors make `flowctl lint` exit 1; warnings do too "
        "with `--strict`.\n",
        "Everything is reported at once. A file that breaks the JSON Schema (`FL1xx`) is "
        "still checked by the `FL2xx`-`FL4xx` rules over the part of it that is well formed: "
        "an unknown key is left out, a broken stage is replaced by a stand-in that keeps its "
        "id and where it leads (so what leads to it, and through it, still counts), and a "
        "broken field, phase list or calendar is left out. What depends on a broken part is "
        "not judged until it is fixed: nothing inside a broken stage, and no rule about "
        "fields, phases or the calendar when one of those was left out.\n",
        "This page is generated from the test fixtures by `python scripts/gen_rules_doc.py`: "
        "every bad example below is linted by the test suite and gives exactly the output "
        "shown; every good example lints clean.\n",
        "| code | name | severity | summary |",
        "| --- | --- | --- | --- |",
    ]
    for r in RULES.values():
        out.append(f"| [{r.code}](#{r.code.lower()}) | {r.name} | {r.severity.value} | "
                   f"{r.summary} |")
    out.append("")
    for r in RULES.values():
        out.append(f'<a id="{r.code.lower()}"></a>\n')
        out.append(f"## {r.code} {r.name}\n")
        out.append(f"*{r.severity.value}*: {r.summary}\n")
        if r.code in NOTES:
            out.append(NOTES[r.code] + "\n")
        bad = sorted((FIX / "invalid").glob(f"{r.code}-*.yaml"))
        for b in bad:
            out.append("Bad:\n")
            out.append(_fence("yaml", _read(b)))
            out.append("`flowctl lint` says:\n")
            out.append(_fence("text", b.with_suffix(".out").read_text(encoding="utf-8")))
            good = FIX / "valid" / b.name
            if good.exists():
                out.append("Good:\n")
                out.append(_fence("yaml", _read(good)))
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    (ROOT / "docs" / "rules.md").write_text(render(), encoding="utf-8")
    print("wrote docs/rules.md")
