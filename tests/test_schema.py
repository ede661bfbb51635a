"""The JSON Schemas and the schema check: valid examples, exact located messages."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from clirun import invoke
from jsonschema import Draft202012Validator

from flowctl.definition import schema
from flowctl.definition.document import Document
from flowctl.definition.loader import load_bytes, load_file
from flowctl.definition.schema import load_schema, schema_text, validate

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "processes").glob("*.yaml"))
FORMAT_DOC = ROOT / "docs" / "format.md"

Row = tuple[str, int, int, str]


@pytest.fixture(params=["fast", "jsonschema"])
def checker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the fast validity check (when installed) and without it."""
    monkeypatch.setattr(schema, "USE_FAST_CHECK", request.param == "fast")
    return str(request.param)


def check(text: str) -> list[Row]:
    doc = load_bytes(text.encode("utf-8"), "t.yaml")
    assert doc.data is not None, doc.diagnostics
    return [(d.code, d.line, d.col, d.message) for d in validate(doc)]


# ---------------------------------------------------------------- the schemas


@pytest.mark.parametrize("kind", ["process", "org"])
def test_schema_is_valid_draft_2020_12_with_versioned_id(kind: str) -> None:
    s = load_schema(kind)
    Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["$id"] == f"https://flowctl.dev/schemas/{kind}/v1.json"
    assert s["properties"]["kind"] == {**s["properties"]["kind"], "const": kind}
    assert json.loads(schema_text(kind)) == s


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every subschema, except the conditions under ``if`` (they only test)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key != "if":
                yield from _subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _subschemas(value)


def _properties(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for sub in _subschemas(load_schema(kind)):
        props = sub.get("properties")
        if isinstance(props, dict):
            for name, prop in props.items():
                if isinstance(prop, dict) and set(prop) - {"const", "enum"}:
                    yield name, prop


def _defs_target(kind: str, prop: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref", "")
    target: dict[str, Any] = load_schema(kind)["$defs"].get(ref.rpartition("/")[2], {})
    return target


@pytest.mark.parametrize("kind", ["process", "org"])
def test_every_property_has_a_description_for_editors(kind: str) -> None:
    missing = [
        name
        for name, prop in _properties(kind)
        if "description" not in prop and "description" not in _defs_target(kind, prop)
    ]
    assert missing == []


@pytest.mark.parametrize("kind", ["process", "org"])
def test_strict_every_object_schema_closes_its_keys(kind: str) -> None:
    open_objects = [
        sorted(sub.get("properties", {}))
        for sub in _subschemas(load_schema(kind))
        if sub.get("type") == "object" and "additionalProperties" not in sub
    ]
    assert open_objects == []


@pytest.mark.parametrize("kind", ["process", "org"])
def test_no_format_keyword_that_would_be_skipped(kind: str) -> None:
    # a field's ``format`` key is a property (its value a subschema), not the keyword
    keyword = [s for s in _subschemas(load_schema(kind)) if isinstance(s.get("format"), str)]
    assert keyword == []


# Keywords that editors built on draft-07 JSON Schema support also understand
# (``$defs`` is reached through plain JSON pointers). 2020-12-only keywords
# such as unevaluatedProperties or prefixItems would be ignored by them.
EDITOR_KEYWORDS = {
    "$defs", "$id", "$ref", "$schema", "additionalProperties", "allOf", "const",
    "description", "else", "enum", "if", "items", "minItems", "minLength",
    "minProperties", "oneOf", "pattern", "properties", "propertyNames", "required",
    "then", "title", "type", "uniqueItems",
}  # fmt: skip


def _keywords(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from _keywords(sub)
            elif key not in ("enum", "const", "required"):
                yield from _keywords(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keywords(item)


@pytest.mark.parametrize("kind", ["process", "org"])
def test_schema_uses_only_keywords_editors_understand(kind: str) -> None:
    used = set(_keywords(load_schema(kind)))
    assert "oneOf" in used or kind == "org"
    assert used - EDITOR_KEYWORDS == set()


def test_top_level_schemas_folder_is_the_package_folder() -> None:
    link = ROOT / "schemas"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "flowctl" / "schemas").resolve()


# ---------------------------------------------------------------- examples


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: pathlib.Path, checker: str) -> None:
    doc = load_file(str(path))
    assert doc.diagnostics == []
    assert validate(doc) == []


def test_examples_cover_both_kinds() -> None:
    kinds = {load_file(str(p)).kind for p in EXAMPLES}
    assert kinds == {"process", "org"}


def test_nothing_to_check_when_the_loader_failed() -> None:
    assert validate(Document(path="x.yaml", data=None)) == []


# ---------------------------------------------------------------- bad documents

FORMS = (
    "initiator; {user: <user id>}; {role: <role id>, pick}; {department: <department id>, "
    "pick}; {field: <user field>}; {relation: department-head|manager, of: <initiator|assignee|"
    "user field>}; {by: <field>, cases: {<value>: <assignee>}}; [<assignee>, ...]"
)
TASK_KEYS = "id, kind, name, description, phase, start, assignee, fields, sla, on_enter, set"
ID_RULE = "use ASCII a-z, digits and '-', starting with a letter"

CASES: dict[str, tuple[str, list[Row]]] = {
    "unknown key with suggestion": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: check
    kind: decision
    brnaches:
      - when: record.x == 1
        to: finish
  - id: finish
    kind: end
""",
        [
            ("FL102", 5, 5, "missing required key 'branches' in decision stage 'check'"),
            (
                "FL101",
                7,
                5,
                "unknown key 'brnaches' in decision stage 'check' (did you mean 'branches'?); "
                f"allowed: {TASK_KEYS}, branches, default",
            ),
        ],
    ),
    "missing required key": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    start: true
  - id: finish
    kind: end
""",
        [("FL102", 5, 5, "missing required key 'results' in task stage 'work'")],
    ),
    "missing required top-level key": (
        "kind: process\nid: demo\nstages:\n  - id: finish\n    kind: end\n",
        [("FL102", 1, 1, "missing required key 'name' in process")],
    ),
    "wrong type": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    start: yes
    results: [finish]
  - id: finish
    kind: end
""",
        [
            (
                "FL103",
                7,
                12,
                "'start' of task stage 'work' must be true or false, got string 'yes'",
            ),
            (
                "FL103",
                8,
                14,
                "'results' of task stage 'work' must be a mapping, got list ['finish']",
            ),
        ],
    ),
    "bad enum value": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: approval
    approvers: [initiator]
    policy: every
    results:
      approve: finish
  - id: finish
    kind: end
    outcome: done
""",
        [
            (
                "FL104",
                8,
                13,
                "'policy' of approval stage 'work' must be one of single, any, all; got 'every'",
            ),
            (
                "FL104",
                13,
                14,
                "'outcome' of end stage 'finish' must be one of completed, approved, rejected, "
                "cancelled; got 'done'",
            ),
        ],
    ),
    "bad stage kind": (
        "kind: process\nid: demo\nname: Demo\nstages:\n  - id: work\n    kind: tsk\n",
        [
            (
                "FL104",
                6,
                11,
                "'kind' of stage 'work' must be one of task, approval, decision, wait, "
                "subprocess, parallel, join, end; got 'tsk' (did you mean 'task'?)",
            )
        ],
    ),
    "bad id pattern": (
        """\
kind: process
id: Demo_Process
name: Demo
stages:
  - id: work
    kind: task
    results:
      Done: finish
  - id: finish
    kind: end
""",
        [
            ("FL105", 2, 5, f"'id' is not a valid id: 'Demo_Process' ({ID_RULE})"),
            (
                "FL105",
                8,
                7,
                f"key 'Done' in 'results' of task stage 'work' is not a valid id ({ID_RULE})",
            ),
        ],
    ),
    "assignee with two forms": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    assignee:
      user: alice
      role: sales-rep
    results:
      done: finish
  - id: finish
    kind: end
""",
        [
            (
                "FL106",
                8,
                7,
                "'assignee' of task stage 'work' mixes 'user' and 'role'; "
                f"use exactly one of: {FORMS}",
            )
        ],
    ),
    "assignee with an unknown form": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    assignee:
      usr: alice
    results:
      done: finish
  - id: finish
    kind: end
""",
        [
            (
                "FL101",
                8,
                7,
                "unknown key 'usr' in 'assignee' of task stage 'work' (did you mean 'user'?); "
                "allowed: user, role, pick, department, field, relation, of, by, cases, default",
            )
        ],
    ),
    "assignee with a misspelled relation": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    assignee:
      relation: department-haed
      of: initiator
    results:
      done: finish
  - id: finish
    kind: end
""",
        [
            (
                "FL104",
                8,
                17,
                "'assignee.relation' of task stage 'work' must be one of department-head, "
                "manager; got 'department-haed' (did you mean 'department-head'?)",
            )
        ],
    ),
    "assignee relation without of": (
        "kind: process\nid: demo\nname: Demo\nstages:\n  - id: work\n    kind: task\n"
        "    assignee: {relation: manager}\n    results: {done: work}\n",
        [("FL102", 7, 5, "missing required key 'of' in 'assignee' of task stage 'work'")],
    ),
    "assignee as a bare user name": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    assignee: alice
    results:
      done: finish
  - id: finish
    kind: end
""",
        [("FL104", 7, 15, f"'assignee' of task stage 'work' must be one of: {FORMS}; got 'alice'")],
    ),
    "approver of the wrong type": (
        "kind: process\nid: demo\nname: Demo\nstages:\n  - id: ok\n    kind: approval\n"
        "    approvers: [5]\n    results: {approve: ok}\n",
        [
            (
                "FL103",
                7,
                17,
                f"'approvers[0]' of approval stage 'ok' must be one of: {FORMS}; got integer 5",
            )
        ],
    ),
    "branches on a task stage": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    branches:
      - when: record.x == 1
        to: finish
    results:
      done: finish
  - id: finish
    kind: end
""",
        [
            (
                "FL101",
                7,
                5,
                "key 'branches' is not allowed in task stage 'work'; "
                f"allowed: {TASK_KEYS}, exclude, results, must_change, validate, notify",
            )
        ],
    ),
    "enum field without values": (
        """\
kind: process
id: demo
name: Demo
fields:
  level:
    type: enum
    label: Level
stages:
  - id: finish
    kind: end
""",
        [("FL102", 5, 3, "missing required key 'values' in field 'level'")],
    ),
    "field keys that depend on the type": (
        """\
kind: process
id: demo
name: Demo
fields:
  note:
    type: text
    maximum: 10
  amount:
    type: number
    minimum: "0"
stages:
  - id: finish
    kind: end
""",
        [
            ("FL101", 7, 5,
             "key 'maximum' is not allowed in field 'note';"
             " allowed: type, label, pattern, default"),
            ("FL103", 10, 14, "'minimum' of field 'amount' must be a number, got string '0'"),
        ],
    ),
    "result forms": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    results:
      done:
        to: finish
        lable: Done
      skip: 7
  - id: finish
    kind: end
""",
        [
            (
                "FL101",
                10,
                9,
                "unknown key 'lable' in 'results.done' of task stage 'work' "
                "(did you mean 'label'?); allowed: to, label, fields, must_change, validate, set",
            ),
            (
                "FL103",
                11,
                13,
                "'results.skip' of task stage 'work' must be one of: <stage id>; "
                "{to: <stage id>, label, fields: {required, optional}, set}; got integer 7",
            ),
        ],
    ),
    "escalation keys that depend on the action": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: work
    kind: task
    results:
      done: finish
    sla:
      within: 1d
      escalations:
        - after: 1d
          action: remind
          to: initiator
        - after: 2d
          action: notify
          result: done
  - id: finish
    kind: end
""",
        [
            (
                "FL101",
                14,
                11,
                "key 'to' is not allowed in 'sla.escalations[0]' of task stage 'work'; "
                "allowed: after, action",
            ),
            (
                "FL101",
                17,
                11,
                "key 'result' is not allowed in 'sla.escalations[1]' of task stage 'work'; "
                "allowed: after, action, to",
            ),
        ],
    ),
    "subprocess that waits takes results, not next": (
        """\
kind: process
id: demo
name: Demo
stages:
  - id: child
    kind: subprocess
    process: goods-delivery
    inputs:
      Order: order_ref
    next: finish
  - id: finish
    kind: end
""",
        [
            ("FL102", 5, 5, "missing required key 'results' in subprocess stage 'child'"),
            (
                "FL105",
                9,
                7,
                "key 'Order' in 'inputs' of subprocess stage 'child' is not a valid field name "
                "(use ASCII a-z, digits and '_', starting with a letter)",
            ),
            (
                "FL101",
                10,
                5,
                f"key 'next' is not allowed in subprocess stage 'child'; allowed: {TASK_KEYS}, "
                "process, inputs, wait, results, notify",
            ),
        ],
    ),
    "calendar": (
        """\
kind: process
id: demo
name: Demo
calendar:
  workdays: [mon, mon, funday]
  hours: "9-5"
  holidays: ["2027-13-01"]
stages: []
""",
        [
            ("FL106", 5, 13, "'calendar.workdays' lists 'mon' more than once"),
            (
                "FL104",
                5,
                24,
                "'calendar.workdays[2]' must be one of mon, tue, wed, thu, fri, sat, sun; "
                "got 'funday'",
            ),
            (
                "FL105",
                6,
                10,
                "'calendar.hours' is not a valid time range: '9-5' "
                '(use HH:MM-HH:MM, quoted, e.g. "09:00-18:00")',
            ),
            (
                "FL105",
                7,
                14,
                "'calendar.holidays[0]' is not a valid date: '2027-13-01' "
                '(use YYYY-MM-DD, quoted, e.g. "2027-01-01")',
            ),
            ("FL106", 8, 9, "'stages' must have at least 1 item"),
        ],
    ),
    "org directory": (
        """\
kind: org
users:
  - id: alice
    name: Alice
    department: Sales
    roles: [sales-rep, sales-rep]
    emial: alice@example.com
departments:
  - name: Sales
roles:
  - id: sales-rep
    title: Sales rep
""",
        [
            (
                "FL105",
                5,
                17,
                f"'department' of user 'alice' is not a valid id: 'Sales' ({ID_RULE})",
            ),
            ("FL106", 6, 12, "'roles' of user 'alice' lists 'sales-rep' more than once"),
            (
                "FL101",
                7,
                5,
                "unknown key 'emial' in user 'alice' (did you mean 'email'?); "
                "allowed: id, name, department, roles, email, away_until, channels, db_login",
            ),
            ("FL102", 9, 5, "missing required key 'id' in department #1"),
            ("FL101", 12, 5, "unknown key 'title' in role 'sales-rep'; allowed: id, name"),
        ],
    ),
    "a stage that is not a mapping": (
        "kind: process\nid: demo\nname: Demo\nstages:\n  - work\n",
        [("FL103", 5, 5, "stage #1 must be a mapping, got string 'work'")],
    ),
    "empty assignee": (
        "kind: process\nid: demo\nname: Demo\nstages:\n  - id: work\n    kind: task\n"
        "    assignee:\n    results: {}\n",
        [
            (
                "FL103",
                7,
                14,
                f"'assignee' of task stage 'work' must be one of: {FORMS}; got an empty value",
            ),
        ],
    ),
    "unknown kind": (
        "kind: proces\nid: demo\n",
        [
            (
                "FL100",
                1,
                7,
                "unknown kind 'proces' (did you mean 'process'?); allowed kinds: process, org",
            )
        ],
    ),
    "missing kind": (
        "# a comment\nid: demo\nname: Demo\n",
        [
            (
                "FL100",
                1,
                1,
                "missing required key 'kind': a definition starts with kind: process or kind: org",
            )
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_document(name: str, checker: str) -> None:
    text, expected = CASES[name]
    assert check(text) == expected


LINTER_CASES = {
    "wait with neither for nor until (FL222)": "  - {id: w, kind: wait, next: w}\n",
    "wait with both for and until (FL222)": (
        "  - {id: w, kind: wait, for: 1d, until: due, next: w}\n"
    ),
    "empty results (FL207)": "  - {id: t, kind: task, results: {}}\n",
    "decision without branches (FL207)": "  - {id: d, kind: decision, branches: []}\n",
    "notify without to (FL217)": (
        "  - {id: t, kind: task, results: {a: t}, sla: {within: 1d, escalations: "
        "[{after: 1d, action: notify}]}}\n"
    ),
    "result escalation without result (FL217)": (
        "  - {id: t, kind: task, results: {a: t}, sla: {within: 1d, escalations: "
        "[{after: 1d, action: result}]}}\n"
    ),
}


@pytest.mark.parametrize("name", list(LINTER_CASES))
def test_semantic_problems_are_left_to_the_linter(name: str, checker: str) -> None:
    """Well-formed but incomplete: the linter explains these with its own codes,
    and can do so only if the schema lets the file through."""
    assert check("kind: process\nid: demo\nname: Demo\nstages:\n" + LINTER_CASES[name]) == []


def test_not_a_mapping_is_reported_at_the_start() -> None:
    doc = Document(path="x.yaml", data=["kind", "process"])
    assert [(d.code, d.line, d.col, d.message) for d in validate(doc)] == [
        (
            "FL100",
            1,
            1,
            "a definition must be a mapping with kind: process or kind: org, "
            "got list ['kind', 'process']",
        )
    ]


def test_a_key_that_is_not_a_string_is_reported_not_raised(checker: str) -> None:
    doc = Document(path="x.yaml", data={"kind": "org", 1: 2})
    assert [(d.code, d.message) for d in validate(doc)] == [
        ("FL101", "unknown key '1' in org directory; allowed: kind, users, departments, roles,"
                  " channels")
    ]


def test_long_values_are_shortened_in_messages() -> None:
    rows = check(f"kind: process\nid: demo\nname: {'x' * 200}\nstages: 3\n")
    assert rows == [("FL103", 4, 9, "'stages' must be a list, got integer 3")]
    rows = check(f"kind: process\nid: {'X' * 200}\nname: n\nstages: [{{id: e, kind: end}}]\n")
    message = rows[0][3]
    assert f"'{'X' * 56}..." in message
    assert len(message) < 160


def test_output_does_not_depend_on_hash_seed() -> None:
    text = CASES["org directory"][0] + CASES["calendar"][0].replace("kind: process\n", "")
    script = (
        "import sys\n"
        "from flowctl.definition.loader import load_bytes\n"
        "from flowctl.definition.schema import validate\n"
        "doc = load_bytes(sys.stdin.buffer.read(), 't.yaml')\n"
        "print('\\n'.join(d.format() for d in validate(doc)))\n"
    )
    outputs = []
    for seed in ("1", "2", "123"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", script],
            input=text.encode(),
            capture_output=True,
            env=env,
            check=True,
            cwd=ROOT,
        )
        outputs.append(run.stdout)
    assert outputs[0].count(b"\n") >= 8
    assert outputs[0] == outputs[1] == outputs[2]


# ---------------------------------------------------------------- flowctl schema


def _run(*args: str) -> Any:
    return invoke(list(args))


def test_cli_prints_the_process_schema_by_default() -> None:
    result = _run("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == load_schema("process")
    assert result.stdout == schema_text("process")


def test_cli_prints_the_org_schema() -> None:
    result = _run("schema", "org")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["$id"] == "https://flowctl.dev/schemas/org/v1.json"


def test_cli_refuses_an_unknown_schema_name() -> None:
    result = _run("schema", "workflow")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "flowctl: error: unknown schema 'workflow': flowctl has schemas for process, org, "
        "scenario\n"
        "flowctl: hint: run `flowctl schema process`, `flowctl schema org` or "
        "`flowctl schema scenario`\n"
    )


def test_cli_help_has_an_example() -> None:
    result = _run("schema", "--help")
    assert result.exit_code == 0
    assert "flowctl schema org > org.schema.json" in result.stdout


# ---------------------------------------------------------------- docs/format.md


def test_format_reference_mentions_every_property() -> None:
    text = FORMAT_DOC.read_text(encoding="utf-8")
    names = {name for kind in ("process", "org") for name, _ in _properties(kind)}
    assert len(names) > 40
    assert sorted(n for n in names if f"`{n}`" not in text) == []


def test_format_reference_lists_every_schema_code() -> None:
    text = FORMAT_DOC.read_text(encoding="utf-8")
    codes = [f"FL10{i}" for i in range(7)]
    assert [c for c in codes if f"| {c} |" not in text] == []
