"""Nothing reaches a terminal or a diagram raw: control characters (C0, C1,
DEL) and bidi controls are refused in definitions, whether written raw or as
a YAML escape ("\\e", "\\0", "\\u202e"), and numbers the engine cannot compare
are refused at lint."""

from __future__ import annotations

import json
import shutil
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


def test_an_integer_in_a_condition_beyond_what_the_engine_compares_fails_lint(
    tmp_path: Path,
) -> None:
    text = PROCESS.replace(
        "stages:", "fields:\n  x:\n    type: number\nstages:"
    ).replace(
        "      done: finish\n",
        "      done: check\n  - id: check\n    kind: decision\n    branches:\n"
        "      - when: record.x * 1" + "0" * 400 + " > 5\n        to: finish\n"
        "      - when: record.x > 5\n        to: work\n    default: finish\n",
    ).format(name="P", description="x")
    assert _lint(tmp_path, text) == (1, [
        "p.yaml:18:26: FL302 the number is too large to compare (above 1.8e308)",
    ])


# ------------------------------------------------ the commands that take text

VALUES = """\
kind: process
id: values
name: Values
fields:
  n: {type: integer}
  x: {type: number}
  title: {type: string}
  body: {type: text}
stages:
  - id: work
    kind: task
    start: true
    assignee: initiator
    fields:
      optional: [n, x, title, body]
    results:
      done: finish
  - id: finish
    kind: end
"""

REFUSED_TEXT = ("control characters (other than {allowed}) and bidi controls are refused, as "
                "they would reach the terminal of whoever reads the instance")
HINT = "flowctl: hint: remove it; to quote a terminal's output, paste it without its colour codes"


class Workspace:
    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "processes").mkdir()
        (tmp_path / "processes" / "values.yaml").write_text(VALUES, encoding="utf-8")
        org = Path(__file__).resolve().parent.parent / "processes" / "org.yaml"
        (tmp_path / "processes" / "org.yaml").write_bytes(org.read_bytes())
        self.db = tmp_path / "flowctl.db"
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": str(self.db),
            "FLOWCTL_PROCESSES": str(tmp_path / "processes"),
            "FLOWCTL_ORG": None,
            "FLOWCTL_USER": "alice",
            "FLOWCTL_NOW": "2026-11-23T09:00:00Z",
            "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, code: int = 0) -> tuple[str, str]:
        result = invoke(list(args), env=self.env)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result.stdout, result.stderr

    def journal(self) -> list[tuple[int, str]]:
        out, _ = self("journal", "values-1", "--json")
        return [(e["version"], e["kind"]) for e in json.loads(out)]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def test_a_number_of_5000_digits_is_a_usage_error(ws: Workspace) -> None:
    out, err = ws("start", "values", "--set", "n=" + "9" * 5000, code=2)
    assert (out, err) == ("", (
        "flowctl: error: field 'n' must be an integer flowctl can compare, at most about "
        "1.8e308 either side of zero; got '999999999999999999999999...' (5,000 characters)\n"))
    assert not ws.db.exists()  # a refused start leaves no store
    out, err = ws("start", "values", "--set", "x=" + "9" * 400, code=2)
    assert err == (
        "flowctl: error: field 'x' must be a number flowctl can compare, at most about "
        "1.8e308 either side of zero; got '999999999999999999999999...' (400 characters)\n")


@pytest.mark.parametrize(("value", "what"), [
    ("n=１２", "field 'n' must be an integer written with the ASCII digits 0-9; got '１２'"),
    ("n=١٢", "field 'n' must be an integer written with the ASCII digits 0-9; got '١٢'"),
    ("x=１２.5", "field 'x' must be a number written with the ASCII digits 0-9; got '１２.5'"),
])
def test_digits_must_be_ascii(ws: Workspace, value: str, what: str) -> None:
    assert ws("start", "values", "--set", value, code=2) == ("", f"flowctl: error: {what}\n")


def test_ascii_numbers_still_read(ws: Workspace) -> None:
    ws("start", "values", "--set", "n=-0012", "--set", "x=2.5e3")
    out, _ = ws("show", "values-1")
    assert "  n (n): -12" in out.splitlines()
    assert "  x (x): 2500.0" in out.splitlines()


def test_expect_version_below_one_is_a_usage_error(ws: Workspace) -> None:
    ws("start", "values")
    out, err = ws("advance", "values-1", "-r", "done", "--expect-version", "-1", code=2)
    assert "flowctl: error: Invalid value for '--expect-version': -1 is not a version: an " \
           "instance's versions count from 1\n" in err
    ws("cancel", "values-1", "--reason", "x", "--expect-version", "0", code=2)
    assert ws.journal() == [(1, "started"), (1, "stage_entered")]


@pytest.mark.parametrize(("args", "what", "char", "allowed"), [
    (["note", "values-1", "hi \x1b]0;PWNED\x07"], "the note", "U+001B (a control character) "
     "at character 4", "tab and line break"),
    (["note", "values-1", "--append", "a\x00"], "the note", "U+0000 (a control character) "
     "at character 2", "tab and line break"),
    (["advance", "values-1", "-r", "done", "--comment", "ok\x9b"], "the comment",
     "U+009B (a control character) at character 3", "tab and line break"),
    (["cancel", "values-1", "--reason", "\u202eevil"], "the reason",
     "U+202E (a bidi control) at character 1", "tab and line break"),
    (["link", "values-1", "invoice", "INV-1\r\n"], "the link reference",
     "U+000D (a control character) at character 6", "tab"),
    (["advance", "values-1", "-r", "done", "--set", "title=a\nb"], "field 'title'",
     "U+000A (a control character) at character 2", "tab"),
    (["advance", "values-1", "-r", "done", "--set", "body=\x1b[2J"], "field 'body'",
     "U+001B (a control character) at character 1", "tab and line break"),
    (["advance", "values-1", "-r", "done", "--comment", "ok\udc9b"], "the comment",
     "U+DC9B (a byte that is not UTF-8) at character 3", "tab and line break"),
])
def test_text_with_control_characters_is_refused(
    ws: Workspace, args: list[str], what: str, char: str, allowed: str,
) -> None:
    ws("start", "values")
    out, err = ws(*args, code=2)
    assert (out, err) == ("", (
        f"flowctl: error: {what} holds {char}: {REFUSED_TEXT.format(allowed=allowed)}\n{HINT}\n"
    ))
    assert ws.journal() == [(1, "started"), (1, "stage_entered")]  # nothing was written


def test_a_file_name_with_a_control_character_is_refused(ws: Workspace, tmp_path: Path) -> None:
    ws("start", "values")
    path = tmp_path / "scan\x1b[2J.pdf"
    path.write_bytes(b"%PDF")
    out, err = ws("attach", "values-1", str(path), code=2)
    assert (out, err) == ("", (
        "flowctl: error: the attachment name holds U+001B (a control character) at character 5: "
        f"{REFUSED_TEXT.format(allowed='tab')}\nflowctl: hint: name it with --name NAME\n"))
    ws("attach", "values-1", str(path), "--name", "scan.pdf")
    assert ws.journal()[-1] == (2, "attached")


def test_free_text_keeps_its_tabs_and_line_breaks(ws: Workspace) -> None:
    ws("start", "values", "--set", "body=line one\n\tline two")
    ws("note", "values-1", "call back\n\tFriday")
    out, _ = ws("show", "values-1")
    lines = out.splitlines()
    assert "  body (body): line one\\x0a\tline two" in lines
    assert lines[lines.index("note:") + 1: lines.index("note:") + 3] == [
        "  call back", "  \tFriday"]


def test_text_stored_before_is_shown_escaped(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flowctl.engine import steps
    from flowctl.text import find_unsafe

    ws("start", "values")
    monkeypatch.setattr(steps, "check_command_text", lambda command: None)
    ws("note", "values-1", "\x1b]0;PWNED\x07 \u202eevil")
    out, _ = ws("show", "values-1")
    assert find_unsafe(out) == -1
    lines = out.splitlines()
    assert lines[lines.index("note:") + 1] == "  \\x1b]0;PWNED\\x07 \\u202eevil"
    out, _ = ws("journal", "values-1")
    assert out.splitlines()[-1].endswith("note  set: \\x1b]0;PWNED\\x07 \\u202eevil")
    out, _ = ws("journal", "values-1", "--json")  # escaped as JSON, the same value
    assert find_unsafe(out) == -1
    assert json.loads(out)[-1]["data"]["text"] == "\x1b]0;PWNED\x07 \u202eevil"
    out, _ = ws("show", "values-1", "--json")
    assert find_unsafe(out) == -1
    assert json.loads(out)["instance"]["note"] == "\x1b]0;PWNED\x07 \u202eevil"


def test_an_error_message_never_echoes_a_control_character(ws: Workspace) -> None:
    ws("start", "values")
    out, err = ws("show", "values-1\x1b[2J", code=2)
    assert err.startswith("flowctl: error: no instance 'values-1\\x1b[2J'")


# ------------------------------------------------ diagrams

def test_dot_and_mermaid_never_receive_a_control_character() -> None:
    from flowctl.definition.build import build_process
    from flowctl.diagram import render_process
    from flowctl.text import find_unsafe

    data = {
        "kind": "process", "id": "p", "name": "Contract \x1b]0;PWNED\x07 \u202eapproval\x00",
        "phases": [{"id": "ph", "name": "Phase \x9b1"}],
        "stages": [
            {"id": "work", "kind": "task", "start": True, "name": "Work\x1b[31m",
             "phase": "ph", "description": "d\x07", "assignee": "initiator",
             "results": {"done": {"to": "finish", "label": "Done\r\x85"}}},
            {"id": "finish", "kind": "end", "name": "End \u2066x\u2069"},
        ],
    }
    process = build_process(data)
    for fmt in ("dot", "mermaid"):
        text = render_process(process, fmt)
        assert isinstance(text, str)
        assert find_unsafe(text) == -1, (fmt, text)
        assert "\\x1b]0;PWNED\\x07" in text or "\\\\x1b]0;PWNED\\\\x07" in text
    if shutil.which("dot"):  # Graphviz refused the raw characters
        svg = render_process(process, "svg")
        assert isinstance(svg, str)
        assert find_unsafe(svg) == -1
