"""Nothing reaches a terminal or a diagram raw: control characters (C0, C1,
DEL) and bidi controls are refused in definitions, whether written raw or as
a YAML escape ("\\e", "\\0", "\\u202e"), and numbers the engine cannot compare
are refused at lint."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import invoke

from flowctl.definition.loader import load_bytes

PROCESS = """\
kind: process
id: p
name: {name}
description: {description}
stages:
  - id: work
    kind: task
    start: true
    assignee: initiator
    results:
      done: finish
  - id: finish
    kind: end
"""

WHY = ("control characters (other than tab and line breaks) and bidi controls could rewrite "
       'a terminal or a diagram; remove it (a YAML escape such as "\\e" or "\\0" writes one)')


def _lint(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    result = invoke(["lint", "--format", "text", "--no-cache", str(path)],
                    env={"FLOWCTL_ORG": None})
    lines = [line.replace(str(tmp_path) + "/", "") for line in result.stdout.splitlines()]
    return result.exit_code, [line for line in lines if ": FL" in line]


def test_a_terminal_escape_in_a_name_fails_lint(tmp_path: Path) -> None:
    text = PROCESS.format(name='"Contract \\e]0;PWNED\\a approval"', description="Plain.")
    assert _lint(tmp_path, text) == (1, [
        "p.yaml:3:7: FL002 forbidden character U+001B (a control character) after "
        f"'Contract ': {WHY}",
    ])


@pytest.mark.parametrize(("written", "char", "where"), [
    ('"\\0"', "U+0000 (a control character)", "at the start of a string"),
    ('"a\\x9bb"', "U+009B (a control character)", "after 'a'"),
    ('"a\\rb"', "U+000D (a control character)", "after 'a'"),
    ('"a\\x7f"', "U+007F (a control character)", "after 'a'"),
    ('"ab\\u202ecd"', "U+202E (a bidi control)", "after 'ab'"),
    ("ab\u2066cd", "U+2066 (a bidi control)", "after 'ab'"),  # raw: YAML allows it
    ('"a\\Nb"', "U+0085 (a control character)", "after 'a'"),
])
def test_escaped_and_raw_controls_are_refused(written: str, char: str, where: str) -> None:
    doc = load_bytes(PROCESS.format(name=written, description="x").encode(), "p.yaml")
    assert doc.data is None
    assert [d.format() for d in doc.diagnostics] == [
        f"p.yaml:3:7: FL002 forbidden character {char} {where}: {WHY}",
    ]


def test_an_escape_in_a_key_is_refused() -> None:
    doc = load_bytes(b'kind: process\n"a\\eb": 1\n', "p.yaml")
    assert [d.code for d in doc.diagnostics] == ["FL002"]


def test_tab_and_newline_are_text(tmp_path: Path) -> None:
    ok = PROCESS.format(name='"Con\\ttract"', description='"Two lines:\\n\\tindented."')
    assert _lint(tmp_path, ok) == (0, [])


def test_an_integer_beyond_what_the_engine_compares_fails_lint(tmp_path: Path) -> None:
    text = PROCESS.replace(
        "stages:", "fields:\n  n:\n    type: integer\n    minimum: 1" + "0" * 400 + "\nstages:"
    ).format(name="P", description="x")
    assert _lint(tmp_path, text) == (1, [
        "p.yaml:8:14: FL011 100000000000000000000000000000000000000000000000000000000...: "
        "the number is too large: flowctl compares numbers as 64-bit floating point, which "
        "holds at most about 1.8e308, and this integer has 401 digits; quote it if text is meant",
    ])
    largest = PROCESS.replace(
        "stages:", "fields:\n  n:\n    type: number\n    minimum: -1.7976931348623157e308\n"
        "    maximum: " + str(2**1000) + "\nstages:"
    ).format(name="P", description="x")
    assert _lint(tmp_path, largest) == (0, [])
