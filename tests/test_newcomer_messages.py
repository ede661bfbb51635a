"""Messages a newcomer understands: each refusal or diagnostic says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import invoke

from flowctl.definition import loader
from flowctl.definition.loader import load_bytes

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"

TAB_MESSAGE = (
    "FL003 invalid YAML: this line is indented with a tab; indent with spaces "
    "(YAML does not allow tabs in indentation)"
)


# -- 1. a tab used for indentation


@pytest.mark.parametrize("c_parser", [True, False], ids=["libyaml", "pure"])
@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"kind: process\nstages:\n\t- id: work\n", "t.yaml:3:1"),
        (b"kind: process\nstages:\n  - id: work\n\tkind: task\n", "t.yaml:4:1"),
        (b"kind: process\nstages:\n  - id: work\n    results:\n  \t  done: end\n", "t.yaml:5:3"),
    ],
    ids=["sequence", "continuation", "after-spaces"],
)
def test_tab_indentation_says_indent_with_spaces(
    data: bytes, where: str, c_parser: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "USE_C_PARSER", c_parser)
    doc = load_bytes(data, "t.yaml")
    assert [d.format() for d in doc.diagnostics] == [f"{where}: {TAB_MESSAGE}"]


def test_a_tab_after_the_indentation_is_not_blamed() -> None:
    doc = load_bytes(b"a:\tb: c\n", "t.yaml")
    assert [d.code for d in doc.diagnostics] == ["FL003"]
    assert "tab" not in doc.diagnostics[0].message


def test_lint_reports_tab_indentation(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_bytes(b"kind: process\nid: p\nstages:\n\t- id: work\n")
    result = invoke(["lint", "--no-cache", str(tmp_path / "p.yaml")])
    assert result.exit_code == 1
    assert f"p.yaml:4:1: {TAB_MESSAGE}\n" in result.stdout


# -- 2. ids with non-ASCII letters

ASCII_ID = "(use ASCII a-z, digits and '-', starting with a letter)"
ASCII_FIELD = "(use ASCII a-z, digits and '_', starting with a letter)"

CYRILLIC_PROCESS = """\
kind: process
id: заявка
name: Заявка
fields:
  сумма: {type: number}
stages:
  - id: работа
    kind: task
    start: true
    assignee: initiator
    results:
      готово: finish
  - id: finish
    kind: end
"""

CYRILLIC_ORG = """\
kind: org
users:
  - id: линда
    name: Линда
"""


def test_non_ascii_ids_say_ascii_a_z(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(CYRILLIC_PROCESS, encoding="utf-8")
    (tmp_path / "org.yaml").write_text(CYRILLIC_ORG, encoding="utf-8")
    result = invoke(["lint", "--no-cache", "--format", "json", str(tmp_path)])
    assert result.exit_code == 1
    found = [(d["line"], d["code"], d["message"]) for d in json.loads(result.stdout)["diagnostics"]]
    assert sorted(found) == sorted([
        (3, "FL105", f"'id' of user 'линда' is not a valid id: 'линда' {ASCII_ID}"),
        (2, "FL105", f"'id' is not a valid id: 'заявка' {ASCII_ID}"),
        (5, "FL105", f"key 'сумма' in 'fields' is not a valid field name {ASCII_FIELD}"),
        (7, "FL105", f"'id' of task stage 'работа' is not a valid id: 'работа' {ASCII_ID}"),
        (12, "FL105",
         f"key 'готово' in 'results' of task stage 'работа' is not a valid id {ASCII_ID}"),
    ])
