"""Reporters: exact text, JSON shape, GitHub escaping, SARIF against its schema."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from flowctl import __version__
from flowctl.api.definitions import LintResult
from flowctl.cli.lint import _palette as lint_palette_for
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.errors import UsageError
from flowctl.lint import reporters as report

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
W = Severity.WARNING

SOURCE = """\
kind: process
id: onboarding
stages:
  - id: start
    next: review
  - id: review
    next: finish
"""


def result(
    *diags: Diagnostic,
    files: list[str] | None = None,
    sources: dict[str, str] | None = None,
) -> LintResult:
    return LintResult(
        diagnostics=list(diags),
        files=files if files is not None else sorted({d.file for d in diags}),
        sources=sources if sources is not None else {},
    )


@pytest.fixture(scope="module")
def sarif_validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


# -- text --------------------------------------------------------------------


def test_text_shows_location_code_message_snippet_caret_and_summary() -> None:
    r = result(
        Diagnostic("p/a.yaml", 7, 11, "FL204", "stage 'finish' does not exist"),
        Diagnostic("p/a.yaml", 2, 5, "FL999", "id looks odd", W),
        files=["p/a.yaml", "p/b.yaml"],
        sources={"p/a.yaml": SOURCE},
    )
    assert report.render_text(r) == (
        "p/a.yaml:2:5: FL999 [warning] id looks odd\n"
        "2 | id: onboarding\n"
        "  |     ^\n"
        "\n"
        "p/a.yaml:7:11: FL204 stage 'finish' does not exist\n"
        "7 |     next: finish\n"
        "  |           ^\n"
        "\n"
        "Found 1 error and 1 warning in 1 file (2 checked).\n"
    )


def test_text_summary_when_clean_and_when_nothing_was_linted() -> None:
    assert report.render_text(result(files=["a.yaml", "b.yaml", "c.yaml"])) == (
        "All 3 files passed.\n"
    )
    assert report.render_text(result(files=["a.yaml"])) == "All 1 file passed.\n"
    assert report.render_text(result(files=[])) == "No YAML files found to lint.\n"


def test_text_summary_counts_errors_warnings_and_files() -> None:
    r = result(
        Diagnostic("a.yaml", 1, 1, "FL100", "x"),
        Diagnostic("a.yaml", 2, 1, "FL101", "y"),
        Diagnostic("b.yaml", 1, 1, "FL219", "z", W),
        Diagnostic("b.yaml", 3, 1, "FL220", "w", W),
        files=["a.yaml", "b.yaml", "c.yaml"],
    )
    assert report.summary_line(r) == "Found 2 errors and 2 warnings in 2 files (3 checked)."


def test_text_caret_sits_under_the_character_after_wide_cjk_text() -> None:
    line = "  name: 客户审批 done"
    col = line.index("d") + 1  # code points, as the loader counts
    r = result(
        Diagnostic("a.yaml", 1, col, "FL101", "unknown key"),
        sources={"a.yaml": line + "\n"},
    )
    lines = report.render_text(r).splitlines()
    assert lines[1] == "1 | " + line
    # 8 narrow cells, then 4 wide characters of 2 cells each, then a space
    assert lines[2] == "  | " + " " * (8 + 4 * 2 + 1) + "^"


def test_text_caret_spans_a_wide_character_it_points_at() -> None:
    line = "id: 审批"
    shown, marker = report.caret_lines(line, line.index("批") + 1)
    assert shown == line
    assert marker == " " * 6 + "^^"


def test_text_tabs_become_spaces_and_the_caret_follows() -> None:
    shown, marker = report.caret_lines("a\tb: 1", 3)
    assert shown == "a   b: 1"
    assert marker == "    ^"


def test_text_range_is_underlined_when_the_end_is_on_the_same_line() -> None:
    r = result(
        Diagnostic("a.yaml", 2, 5, "FL105", "bad id", end_line=2, end_col=15),
        sources={"a.yaml": SOURCE},
    )
    assert report.render_text(r).splitlines()[2] == "  |     ^^^^^^^^^^"


def test_text_caret_past_the_end_of_the_line_points_after_it() -> None:
    assert report.caret_lines("key:", 5) == ("key:", "    ^")
    assert report.caret_lines("", 1) == ("", "^")


def test_text_gutter_grows_with_the_line_number() -> None:
    text = "".join(f"k{i}: v\n" for i in range(1, 13))
    r = result(Diagnostic("a.yaml", 12, 1, "FL101", "x"), sources={"a.yaml": text})
    assert report.render_text(r).splitlines()[1:3] == ["12 | k12: v", "   | ^"]


def test_text_without_source_or_outside_it_has_no_snippet() -> None:
    r = result(
        Diagnostic("gone.yaml", 1, 1, "FL013", "cannot read"),
        Diagnostic("short.yaml", 9, 1, "FL003", "unexpected end"),
        sources={"short.yaml": "a: 1\n"},
    )
    assert report.render_text(r) == (
        "gone.yaml:1:1: FL013 cannot read\n"
        "\n"
        "short.yaml:9:1: FL003 unexpected end\n"
        "\n"
        "Found 2 errors and 0 warnings in 2 files (2 checked).\n"
    )


def test_text_lines_are_counted_as_the_yaml_reader_counts_them() -> None:
    # CRLF, lone CR and NEL are line breaks for YAML; \x0c is not
    text = "a: 1\r\nb: 2\rc: 3\x85d: \x0c4\n"
    r = result(Diagnostic("a.yaml", 4, 4, "FL103", "x"), sources={"a.yaml": text})
    assert report.render_text(r).splitlines()[1:3] == ["4 | d: \\x0c4", "  |    ^^^^"]


def test_text_escapes_terminal_control_and_bidi_characters() -> None:
    r = result(
        Diagnostic("a.yaml", 1, 8, "FL101", "unknown key '\x1b[31mred'"),
        sources={"a.yaml": "x: \u202e\x1b[2J y\n"},
    )
    out = report.render_text(r)
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert out.splitlines()[:3] == [
        "a.yaml:1:8: FL101 unknown key '\\x1b[31mred'",
        "1 | x: \\u202e\\x1b[2J y",
        "  |                ^",
    ]


def test_text_multi_line_message_is_indented() -> None:
    r = result(Diagnostic("a.yaml", 1, 1, "FL106", "first\nsecond"))
    assert report.render_text(r).splitlines()[:2] == ["a.yaml:1:1: FL106 first", "    second"]


def test_text_is_sorted_and_identical_whatever_the_input_order() -> None:
    diags = [
        Diagnostic(f, line, col, code, "m")
        for f in ("b.yaml", "a.yaml")
        for line, col, code in ((3, 1, "FL205"), (1, 2, "FL101"), (1, 2, "FL100"))
    ]
    expected = report.render_text(result(*diags, sources={"a.yaml": SOURCE}))
    shuffled = diags[:]
    random.Random(4).shuffle(shuffled)
    assert report.render_text(result(*shuffled, sources={"a.yaml": SOURCE})) == expected
    heads = [ln for ln in expected.splitlines() if ln.startswith(("a.yaml", "b.yaml"))]
    assert [h.split(" ")[0] + h.split(" ")[1] for h in heads] == [
        "a.yaml:1:2:FL100",
        "a.yaml:1:2:FL101",
        "a.yaml:3:1:FL205",
        "b.yaml:1:2:FL100",
        "b.yaml:1:2:FL101",
        "b.yaml:3:1:FL205",
    ]


def test_text_colour_only_when_asked() -> None:
    r = result(
        Diagnostic("a.yaml", 2, 5, "FL204", "x"),
        Diagnostic("a.yaml", 3, 1, "FL219", "y", W),
        sources={"a.yaml": SOURCE},
    )
    plain = report.render_text(r)
    coloured = report.render_text(r, palette=lint_palette_for("always", None))
    assert "\x1b[" not in plain
    assert "\x1b[1;31mFL204\x1b[0m" in coloured
    assert "\x1b[1;33mFL219\x1b[0m" in coloured
    # the caret line keeps its alignment: only the caret is painted
    assert "\x1b[34m  |\x1b[0m     \x1b[1;31m^\x1b[0m" in coloured
    assert _strip_ansi(coloured) == plain


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize(
    ("choice", "isatty", "env", "expected"),
    [
        ("auto", True, {}, True),
        ("auto", False, {}, False),
        ("auto", True, {"NO_COLOR": "1"}, False),
        ("auto", True, {"NO_COLOR": ""}, True),
        ("always", False, {"NO_COLOR": "1"}, True),
        ("never", True, {}, False),
    ],
)
def test_use_color(choice: str, isatty: bool, env: dict[str, str], expected: bool) -> None:
    assert report.use_color(choice, isatty=isatty, environ=env) is expected


# -- json --------------------------------------------------------------------


def test_json_document_shape() -> None:
    r = result(
        Diagnostic("a.yaml", 7, 11, "FL204", "stage 'finish' does not exist"),
        Diagnostic("a.yaml", 2, 5, "FL219", "one way", W, end_line=2, end_col=15),
        files=["a.yaml", "b.yaml"],
    )
    text = report.render_json(r)
    assert text.endswith("}\n")
    assert list(json.loads(text)) == ["version", "files", "diagnostics", "summary"]
    assert json.loads(text) == {
        "version": 1,
        "files": ["a.yaml", "b.yaml"],
        "diagnostics": [
            {
                "file": "a.yaml",
                "line": 2,
                "col": 5,
                "end_line": 2,
                "end_col": 15,
                "code": "FL219",
                "severity": "warning",
                "message": "one way",
            },
            {
                "file": "a.yaml",
                "line": 7,
                "col": 11,
                "end_line": None,
                "end_col": None,
                "code": "FL204",
                "severity": "error",
                "message": "stage 'finish' does not exist",
            },
        ],
        "summary": {"files": 2, "files_with_problems": 1, "errors": 1, "warnings": 1},
    }


def test_json_keeps_unicode_readable() -> None:
    r = result(Diagnostic("a.yaml", 1, 1, "FL101", "未知的键 '备注'"))
    assert '"message": "未知的键 \'备注\'"' in report.render_json(r)


# -- github ------------------------------------------------------------------


def test_github_escaping_follows_actions_toolkit() -> None:
    assert report.github_escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert report.github_escape_property("a%b\nc:d,e") == "a%25b%0Ac%3Ad%2Ce"


def test_github_commands() -> None:
    r = result(
        Diagnostic("p/a,b.yaml", 3, 7, "FL204", "50% of 'next: x'\nis wrong"),
        Diagnostic("p/a,b.yaml", 1, 1, "FL219", "one way", W, end_line=1, end_col=4),
        files=["p/a,b.yaml"],
    )
    assert report.render_github(r, root="/repo") == (
        "::warning file=p/a%2Cb.yaml,line=1,col=1,endLine=1,endColumn=4,title=FL219::one way\n"
        "::error file=p/a%2Cb.yaml,line=3,col=7,title=FL204::50%25 of 'next: x'%0Ais wrong\n"
        "Found 1 error and 1 warning in 1 file (1 checked).\n"
    )


def test_github_paths_are_relative_to_the_root(tmp_path: Path) -> None:
    inside = str(tmp_path / "processes" / "a.yaml")
    r = result(
        Diagnostic(inside, 1, 1, "FL101", "x"), Diagnostic("/elsewhere/b.yaml", 1, 1, "FL101", "y")
    )
    out = report.render_github(r, root=str(tmp_path))
    assert "::error file=processes/a.yaml,line=1" in out
    assert "::error file=/elsewhere/b.yaml,line=1" in out


def test_github_message_cannot_smuggle_a_second_command() -> None:
    r = result(Diagnostic("a.yaml", 1, 1, "FL101", "x\n::error file=evil::boom\x1b[2J"))
    lines = report.render_github(r, root="/").splitlines()
    assert len(lines) == 2
    assert (
        lines[0]
        == "::error file=a.yaml,line=1,col=1,title=FL101::x%0A::error file=evil::boom\\x1b[2J"
    )


# -- sarif -------------------------------------------------------------------


def sarif(r: LintResult, root: str = "/repo") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(report.render_sarif(r, root=root))
    return doc


def test_sarif_with_no_results_is_valid(sarif_validator: Draft7Validator) -> None:
    doc = sarif(result(files=["a.yaml"]))
    sarif_validator.validate(doc)
    run = doc["runs"][0]
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["tool"]["driver"]["name"] == "flowctl"
    assert run["tool"]["driver"]["version"] == __version__
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///repo/"}}


def test_sarif_results_rules_and_locations(sarif_validator: Draft7Validator) -> None:
    from flowctl.lint.codes import RULES

    r = result(
        Diagnostic("processes/a.yaml", 7, 11, "FL204", "stage 'finish' does not exist"),
        Diagnostic("processes/a.yaml", 9, 3, "FL204", "stage 'x' does not exist"),
        Diagnostic("processes/sub dir/b.yaml", 2, 4, "FL219", "one way", W, end_line=2, end_col=9),
        Diagnostic("processes/b.yaml", 1, 1, "FL999", "a code the registry does not know"),
    )
    doc = sarif(r)
    sarif_validator.validate(doc)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == ["FL204", "FL219", "FL999"]
    assert rules[0] == {
        "id": "FL204",
        "name": RULES["FL204"].name,
        "shortDescription": {"text": RULES["FL204"].summary},
        "helpUri": "https://github.com/flowctl/flowctl/blob/main/docs/rules.md#fl204",
        "defaultConfiguration": {"level": "error"},
    }
    assert rules[1]["defaultConfiguration"] == {"level": "warning"}
    # unknown to the registry: the code stands in, the level comes from the result
    assert rules[2]["name"] == "FL999"
    assert rules[2]["shortDescription"] == {"text": "FL999"}
    results = run["results"]
    assert [(x["ruleId"], x["ruleIndex"], x["level"]) for x in results] == [
        ("FL204", 0, "error"),
        ("FL204", 0, "error"),
        ("FL999", 2, "error"),
        ("FL219", 1, "warning"),
    ]
    assert results[0]["message"] == {"text": "stage 'finish' does not exist"}
    assert results[0]["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "processes/a.yaml", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 7, "startColumn": 11},
            }
        }
    ]
    loc = results[3]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "processes/sub%20dir/b.yaml"
    assert loc["region"] == {"startLine": 2, "startColumn": 4, "endLine": 2, "endColumn": 9}


def test_sarif_columns_are_code_points(sarif_validator: Draft7Validator) -> None:
    line = "name: 客户审批 done"
    col = line.index("d") + 1
    doc = sarif(result(Diagnostic("a.yaml", 1, col, "FL101", "x"), sources={"a.yaml": line}))
    sarif_validator.validate(doc)
    region = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region["startColumn"] == 12  # not UTF-16 units, not bytes, not cells


def test_sarif_file_outside_the_root_gets_an_absolute_uri(
    tmp_path: Path, sarif_validator: Draft7Validator
) -> None:
    root = tmp_path / "repo"
    outside = tmp_path / "other" / "a.yaml"
    doc = sarif(result(Diagnostic(str(outside), 1, 1, "FL101", "x")), root=str(root))
    sarif_validator.validate(doc)
    artifact = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": outside.as_uri()}


def test_sarif_is_stable_and_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = result(Diagnostic("a.yaml", 1, 1, "FL101", "x"))
    assert report.render_sarif(r) == report.render_sarif(r, root=str(tmp_path))
    assert report.render_sarif(r) == report.render_sarif(r)


def test_sarif_schema_is_the_vendored_2_1_0_draft_07_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]


def test_sarif_validator_rejects_a_broken_log(sarif_validator: Draft7Validator) -> None:
    doc = sarif(result(Diagnostic("a.yaml", 1, 1, "FL101", "x")))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    assert not sarif_validator.is_valid(doc)


# -- dispatch ----------------------------------------------------------------


def test_render_dispatches_and_refuses_unknown_formats() -> None:
    r = result(Diagnostic("a.yaml", 1, 1, "FL101", "x"))
    assert report.render(r, "json") == report.render_json(r)
    assert report.render(r, "text") == report.render_text(r)
    with pytest.raises(UsageError, match="unknown report format 'xml'"):
        report.render(r, "xml")
