"""A second, independent validator (jsonschema-rs) agrees with flowctl's schema check.

flowctl reports schema errors through jsonschema; when jsonschema-rs is
installed it also uses it to confirm valid documents quickly. Here both are
run on every example, every fixture, small bad documents and mechanical
mutations of the examples: they must agree on valid / not valid, and the
fast path must never change what flowctl reports.
"""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from flowctl.definition import schema
from flowctl.definition.document import Document
from flowctl.definition.loader import load_bytes, load_file
from flowctl.definition.schema import KINDS, load_schema, validate

jsonschema_rs = pytest.importorskip("jsonschema_rs")

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "processes").glob("*.yaml"))
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("**/*.yaml"))
MUTATIONS_PER_FILE = 40
RAW_PHRASES = (
    "under any of the given schemas",
    "valid under each of",
    "False schema",
    "was unexpected",
)


@cache
def _rs_validator(kind: str) -> Any:
    return jsonschema_rs.Draft202012Validator(dict(load_schema(kind)))


def _rs_valid(data: Any) -> bool:
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in KINDS:
        return False
    return bool(_rs_validator(kind).is_valid(data))


def _flowctl(doc: Document, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> list[str]:
    monkeypatch.setattr(schema, "USE_FAST_CHECK", fast)
    return [d.format() for d in validate(doc)]


def _problems(doc: Document, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How flowctl and jsonschema-rs disagree on ``doc``, and raw messages."""
    slow = _flowctl(doc, monkeypatch, fast=False)
    if (slow == []) != _rs_valid(doc.data):
        return [f"{doc.path}: flowctl {slow or 'valid'}; jsonschema-rs {_rs_valid(doc.data)}"]
    fast = _flowctl(doc, monkeypatch, fast=True)
    if fast != slow:
        return [f"{doc.path}: fast path {fast} != jsonschema {slow}"]
    # every error is explained in flowctl's words, never jsonschema's fallback text
    return [line for line in slow if any(raw in line for raw in RAW_PHRASES)]


@pytest.mark.parametrize("path", EXAMPLES + FIXTURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_files_agree(path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = load_file(str(path))
    if doc.data is None:
        pytest.skip("the YAML does not load (the loader reports it)")
    assert _problems(doc, monkeypatch) == []


BAD = {
    "unknown key": "kind: process\nid: d\nname: D\nstages:\n  - {id: e, kind: end, nxt: e}\n",
    "missing results": "kind: process\nid: d\nname: D\nstages:\n  - {id: t, kind: task}\n",
    "branches on task": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: t, kind: task, results: {done: t}, branches: [{when: x, to: t}]}\n"
    ),
    "two assignee forms": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: t, kind: task, assignee: {user: a, role: b}, results: {done: t}}\n"
    ),
    "assignee string": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: t, kind: task, assignee: alice, results: {done: t}}\n"
    ),
    "relation misspelled": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: t, kind: task, assignee: {relation: boss, of: x}, results: {done: t}}\n"
    ),
    "enum without values": (
        "kind: process\nid: d\nname: D\nfields: {l: {type: enum}}\n"
        "stages:\n  - {id: e, kind: end}\n"
    ),
    "wait both good": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: w, kind: wait, for: 1d, until: due, next: w}\n"
    ),
    "wait neither good": (
        "kind: process\nid: d\nname: D\nstages:\n  - {id: w, kind: wait, next: w}\n"
    ),
    "subprocess no wait with results": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: s, kind: subprocess, process: c, wait: false, results: {done: s}}\n"
    ),
    "subprocess no wait good": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: s, kind: subprocess, process: c, wait: false, next: s}\n"
    ),
    "escalation remind with to": (
        "kind: process\nid: d\nname: D\nstages:\n"
        "  - {id: t, kind: task, results: {done: t}, sla: {within: 1d, escalations: "
        "[{after: 1d, action: remind, to: initiator}]}}\n"
    ),
    "bad id": "kind: process\nid: D_1\nname: D\nstages:\n  - {id: e, kind: end}\n",
    "bad field name": (
        "kind: process\nid: d\nname: D\nfields: {Amount: {type: number}}\n"
        "stages:\n  - {id: e, kind: end}\n"
    ),
    "unknown kind": "kind: workflow\nid: d\n",
    "org bad": "kind: org\nusers:\n  - {id: a, email: nobody}\nroles: [{id: r, title: R}]\n",
    "org good": "kind: org\nusers:\n  - {id: a, email: a@example.com}\n",
}


@pytest.mark.parametrize("name", list(BAD))
def test_small_documents_agree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = load_bytes(BAD[name].encode(), f"{name}.yaml")
    assert doc.data is not None
    assert _problems(doc, monkeypatch) == []
    assert (validate(doc) == []) == name.endswith("good")


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _mutate(data: Any, path: tuple[Any, ...], how: str) -> Any:
    out = copy.deepcopy(data)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "extra" and isinstance(parent[last], dict):
        parent[last]["zz_extra"] = 1
    elif how == "number":
        parent[last] = 12345
    elif how == "text":
        parent[last] = "Not An Id!"
    elif how == "empty":
        parent[last] = None
    return out


def _mutations(data: Any) -> Iterator[tuple[str, Any]]:
    paths = list(_paths(data))
    hows = ("delete", "extra", "number", "text", "empty")
    variants = [(p, h) for p in paths for h in hows]
    stride = max(1, len(variants) // MUTATIONS_PER_FILE)
    for path, how in variants[::stride]:
        yield f"{how} {path}", _mutate(data, path, how)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_mutated_examples_agree(path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = load_file(str(path))
    problems = []
    count = 0
    for label, data in _mutations(base.data):
        doc = Document(path=f"{path.name} [{label}]", data=data)
        problems += _problems(doc, monkeypatch)
        count += 1
    assert count >= MUTATIONS_PER_FILE
    assert problems == []
