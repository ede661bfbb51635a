"""The schema's verdict is exact: flowctl, jsonschema-rs and Python's jsonschema agree.

The schemas' regular expressions are read by three engines: jsonschema-rs
(flowctl's fast check, and what editors and check-jsonschema read as
ECMA-262), and Python's ``re`` (jsonschema, which explains the errors). They
differ on ``$`` (Python's also matches before a final newline) and on ``\\s``
(each engine has its own list of spaces), so the bundled patterns avoid both.
Here hand-written edge cases go through all three at every place the schema
checks a string's form, and a document the fast check refuses is never passed
because jsonschema finds nothing.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from flowctl.definition import schema
from flowctl.definition.document import Document
from flowctl.definition.loader import load_bytes
from flowctl.definition.schema import load_schema, validate

jsonschema_rs = pytest.importorskip("jsonschema_rs")

PROCESS: dict[str, Any] = {
    "kind": "process",
    "id": "p",
    "name": "P",
    "fields": {"amount": {"type": "integer", "label": "Amount", "minimum": 0}},
    "calendar": {"hours": "09:00-18:00", "holidays": ["2027-01-01"]},
    "stages": [
        {"id": "t", "kind": "task", "name": "T", "start": True,
         "results": {"done": {"to": "e", "label": "Done"}}},
        {"id": "e", "kind": "end"},
    ],
}
ORG: dict[str, Any] = {
    "kind": "org",
    "users": [{"id": "u", "name": "U", "email": "u@example.com"}],
}

# where each kind of string sits: a function that puts the value there
PLACES = {
    "process id": ("process", lambda d, v: d.__setitem__("id", v)),
    "stage id": ("process", lambda d, v: d["stages"][1].__setitem__("id", v)),
    "result key": ("process", lambda d, v: d["stages"][0].__setitem__(
        "results", {v: {"to": "e", "label": "Done"}})),
    "field name": ("process", lambda d, v: d.__setitem__("fields", {v: {"type": "string"}})),
    "stage name": ("process", lambda d, v: d["stages"][0].__setitem__("name", v)),
    "result label": ("process", lambda d, v: d["stages"][0]["results"]["done"].__setitem__(
        "label", v)),
    "field label": ("process", lambda d, v: d["fields"]["amount"].__setitem__("label", v)),
    "hours": ("process", lambda d, v: d["calendar"].__setitem__("hours", v)),
    "holiday": ("process", lambda d, v: d["calendar"].__setitem__("holidays", [v])),
    "user id": ("org", lambda d, v: d["users"][0].__setitem__("id", v)),
    "user name": ("org", lambda d, v: d["users"][0].__setitem__("name", v)),
    "email": ("org", lambda d, v: d["users"][0].__setitem__("email", v)),
}

SPACES = ["\u00a0", "\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
          "\ufeff", "\x85", "\x1c", "\x1f", "\x0b", "\x0c", "\r", "\u180e", "\u200b"]
# what "\s" means in ECMA-262, the schema's dialect
ECMA_SPACES = ("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
               "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")
# (value, whether it is valid) for each place
EDGES: dict[str, list[tuple[str, bool]]] = {
    "id": [("ok", True), ("nl\n", False), ("nl\n\n", False), ("\nnl", False),
           ("n\nl", False), ("nl\r", False), ("n l", False), ("a١٢", False),
           ("ａb", False), ("a-1", True)],
    "field": [("ok_1", True), ("nl\n", False), ("amount\n", False), ("a٣", False)],
    "name": [("Contract approval", True), ("Name\n", True), ("Na\tme", True),
             ("Zoë – 契約", True), ("x\u2028y", True)],
    "hours": [("09:00-18:00", True), ("09:00-18:00\n", False), ("０9:00-18:00", False)],
    "date": [("2027-01-01", True), ("2027-01-01\n", False), ("２０２７-01-01", False),
             ("2027-01-٠١", False)],
    "email": [("a@example.com", True), ("josé@exemple.fr", True), ("a@b\n", False),
              ("a b@c", False), ("a@b@c", False)]
    + [(f"a{s}b@c", s not in ECMA_SPACES) for s in SPACES]
    + [(f"a@c{s}", s not in ECMA_SPACES) for s in SPACES],
}
GROUP = {
    "process id": "id", "stage id": "id", "result key": "id", "user id": "id",
    "field name": "field", "stage name": "name", "result label": "name",
    "field label": "name", "user name": "name", "hours": "hours", "holiday": "date",
    "email": "email",
}
CASES = [
    (place, value, valid)
    for place, group in GROUP.items()
    for value, valid in EDGES[group]
]


@cache
def _rs(kind: str) -> Any:
    return jsonschema_rs.Draft202012Validator(dict(load_schema(kind)))


def _py_valid(kind: str, data: Any) -> bool:
    from jsonschema import Draft202012Validator

    return bool(Draft202012Validator(load_schema(kind)).is_valid(data))


def _flowctl(data: Any, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> list[str]:
    monkeypatch.setattr(schema, "USE_FAST_CHECK", fast)
    return [d.format() for d in validate(Document(path="edge.yaml", data=data))]


@pytest.mark.parametrize(("place", "value", "valid"), CASES,
                         ids=[f"{p}={v!r}" for p, v, _ in CASES])
def test_edge_cases_agree(place: str, value: str, valid: bool,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    kind, put = PLACES[place]
    data = copy.deepcopy(PROCESS if kind == "process" else ORG)
    put(data, value)
    verdicts = {
        "jsonschema-rs": bool(_rs(kind).is_valid(data)),
        "jsonschema": _py_valid(kind, data),
        "flowctl": _flowctl(data, monkeypatch, fast=True) == [],
        "flowctl without the fast check": _flowctl(data, monkeypatch, fast=False) == [],
    }
    assert verdicts == dict.fromkeys(verdicts, valid)


@pytest.mark.parametrize("number", [10**400, -(10**400), 2**64, 1.7976931348623157e308, -1e-300])
def test_huge_numbers_agree(number: float, monkeypatch: pytest.MonkeyPatch) -> None:
    data = copy.deepcopy(PROCESS)
    data["fields"]["amount"]["minimum"] = number
    assert _rs("process").is_valid(data)
    assert _py_valid("process", data)
    assert _flowctl(data, monkeypatch, fast=True) == []


def test_id_ending_in_a_newline_fails_lint() -> None:
    doc = load_bytes(b'kind: process\nid: "nl\\n"\nname: N\nstages:\n  - {id: e, kind: end}\n',
                     "nl.yaml")
    assert [d.format() for d in validate(doc)] == [
        "nl.yaml:2:5: FL105 'id' is not a valid id: 'nl\\n' "
        "(use ASCII a-z, digits and '-', starting with a letter)",
    ]


def test_a_document_the_fast_check_refuses_is_never_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Were jsonschema to find nothing, jsonschema-rs's own errors are reported."""

    class FindsNothing:
        def iter_errors(self, data: Any) -> list[Any]:
            return []

    monkeypatch.setattr(schema, "_validator", lambda kind: FindsNothing())
    doc = load_bytes(
        b'kind: process\nid: "nl\\n"\nname: N\nstages:\n  - {id: "e\\n", kind: end}\n',
        "nl.yaml",
    )
    assert [d.format() for d in validate(doc)] == [
        "nl.yaml:2:5: FL105 'id' is not a valid id: 'nl\\n' "
        "(use ASCII a-z, digits and '-', starting with a letter)",
        "nl.yaml:5:10: FL105 'id' of end stage 'e\\n' is not a valid id: 'e\\n' "
        "(use ASCII a-z, digits and '-', starting with a letter)",
    ]
    doc = load_bytes(b"kind: process\nid: p\nname: N\nstages: []\n", "empty.yaml")
    assert [d.format() for d in validate(doc)] == [
        "empty.yaml:4:9: FL106 'stages': [] has less than 1 item",
    ]
