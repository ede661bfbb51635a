"""The loader on well-formed input: plain data, exact positions, scalar styles."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from ruamel.yaml import YAML

from flowctl.definition import loader
from flowctl.definition.loader import load_bytes, load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "processes").glob("*.yaml"))
PLAIN_TYPES = (dict, list, str, int, float, bool, type(None))


@pytest.fixture(params=["c", "pure"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with libyaml and with ruamel's pure-Python parser (the fallback)."""
    monkeypatch.setattr(loader, "USE_C_PARSER", request.param == "c")
    return str(request.param)


def _walk(data: Any) -> Iterator[Any]:
    stack = [data]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def test_there_are_six_examples() -> None:
    assert [p.name for p in EXAMPLES] == [
        "contract-approval.yaml",
        "deal-blueprint.yaml",
        "goods-delivery.yaml",
        "key-account-filing-approval.yaml",
        "lost-customer-recovery.yaml",
        "org.yaml",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.usefixtures("backend")
def test_examples_load_like_ruamel_safe(path: pathlib.Path) -> None:
    doc = load_file(str(path))
    assert doc.diagnostics == []
    assert doc.ok
    assert doc.data == YAML(typ="safe").load(path.read_bytes())
    assert doc.text == path.read_text(encoding="utf-8")
    assert {type(n) for n in _walk(doc.data)} <= set(PLAIN_TYPES)


def test_display_name_is_used(tmp_path: pathlib.Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_bytes(b"a: 1\nb: c: d\n")
    doc = load_file(str(f), display="processes/x.yaml")
    assert doc.path == "processes/x.yaml"
    assert [d.format() for d in doc.diagnostics] == [
        "processes/x.yaml:2:5: FL003 invalid YAML: mapping values are not allowed in this context"
    ]


@pytest.mark.usefixtures("backend")
def test_positions_of_known_nodes() -> None:
    doc = load_file(str(ROOT / "processes" / "contract-approval.yaml"))
    pos = doc.positions
    assert pos.values[()] == (2, 1)
    assert pos.keys[("kind",)] == (2, 1)
    assert pos.values[("kind",)] == (2, 7)
    assert pos.values[("id",)] == (3, 5)
    assert pos.values[("description",)] == (5, 14)
    assert pos.keys[("calendar", "hours")] == (18, 3)
    assert pos.values[("calendar", "hours")] == (18, 10)
    assert pos.values[("calendar", "holidays")] == (19, 13)
    assert pos.values[("calendar", "holidays", 1)] == (19, 28)
    assert pos.values[("fields", "amount", "minimum")] == (27, 14)
    assert pos.keys[("stages",)] == (45, 1)
    assert pos.values[("stages",)] == (46, 3)
    assert pos.values[("stages", 0)] == (46, 5)
    assert pos.keys[("stages", 0, "id")] == (46, 5)
    assert pos.values[("stages", 0, "id")] == (46, 9)
    assert pos.values[("stages", 0, "start")] == (48, 12)
    assert ("stages", 0) not in pos.keys  # list items have no key
    assert doc.data["stages"][0]["start"] is True


@pytest.mark.usefixtures("backend")
def test_scalar_styles_are_recorded_for_strings() -> None:
    text = b"plain: a\nsingle: 'b'\ndouble: \"c\"\nliteral: |\n  d\nfolded: >\n  e\nnum: 1\n"
    doc = load_bytes(text, "s.yaml")
    assert doc.data == {
        "plain": "a",
        "single": "b",
        "double": "c",
        "literal": "d\n",
        "folded": "e\n",
        "num": 1,
    }
    assert doc.positions.styles == {
        ("plain",): "",
        ("single",): "'",
        ("double",): '"',
        ("literal",): "|",
        ("folded",): ">",
    }


@pytest.mark.usefixtures("backend")
def test_yaml_1_1_booleans_stay_strings() -> None:
    doc = load_bytes(b"a: no\nb: on\nc: yes\nd: off\ne: y\nf: n\nno: x\non: z\n", "b.yaml")
    assert doc.diagnostics == []
    assert doc.data == {
        "a": "no",
        "b": "on",
        "c": "yes",
        "d": "off",
        "e": "y",
        "f": "n",
        "no": "x",
        "on": "z",
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1", 1),
        ("-5", -5),
        ("+7", 7),
        ("0", 0),
        ("1_000", 1000),
        ("012", 12),
        ("0x1F", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("null", None),
        ("~", None),
        ("", None),
        ("'1'", "1"),
        ('"true"', "true"),
        ("'null'", "null"),
        ("0x", "0x"),
        ("1.2.3", "1.2.3"),
        ("<<", "<<"),
        ("=", "="),
    ],
)
@pytest.mark.usefixtures("backend")
def test_scalar_types(source: str, expected: Any) -> None:
    doc = load_bytes(f"v: {source}\n".encode(), "t.yaml")
    assert doc.diagnostics == []
    value = doc.data["v"]
    assert value == expected
    assert type(value) is type(expected)  # a bool is a bool, never an int (and vice versa)
    if source not in ("<<", "="):  # ruamel's constructor cannot build these two
        assert doc.data == YAML(typ="safe").load(f"v: {source}\n")


@pytest.mark.usefixtures("backend")
def test_utf8_bom_is_accepted_and_stripped() -> None:
    doc = load_bytes(b"\xef\xbb\xbfkind: org\nname: x\n", "bom.yaml")
    assert doc.diagnostics == []
    assert doc.data == {"kind": "org", "name": "x"}
    assert doc.text == "kind: org\nname: x\n"
    assert doc.positions.values[("kind",)] == (1, 7)


@pytest.mark.usefixtures("backend")
def test_chinese_and_russian_round_trip_with_character_columns() -> None:
    text = "名称: 合同审批\nописание: 'Согласование договора'\nlist: [甲, Б]\n"
    doc = load_bytes(text.encode(), "i18n.yaml")
    assert doc.diagnostics == []
    assert doc.data == {
        "名称": "合同审批",
        "описание": "Согласование договора",
        "list": ["甲", "Б"],
    }
    assert doc.text == text
    assert doc.positions.values[("名称",)] == (1, 5)
    assert doc.positions.values[("описание",)] == (2, 11)
    assert doc.positions.values[("list", 1)] == (3, 11)


def test_goods_delivery_keeps_cyrillic_names() -> None:
    doc = load_file(str(ROOT / "processes" / "goods-delivery.yaml"))
    assert doc.data["name"] == "Доставка товара (Goods delivery)"


def test_nesting_up_to_the_limit_loads() -> None:
    depth = loader.MAX_DEPTH - 1  # the top mapping is level 1
    doc = load_bytes(b"a: " + b"[" * depth + b"]" * depth + b"\n", "deep.yaml")
    assert doc.diagnostics == []
    inner = doc.data["a"]
    for _ in range(depth - 1):
        inner = inner[0]
    assert inner == []


def test_file_of_exactly_max_bytes_loads(tmp_path: pathlib.Path) -> None:
    f = tmp_path / "max.yaml"
    f.write_bytes(b"a: " + b"x" * (loader.MAX_BYTES - 4) + b"\n")
    assert f.stat().st_size == loader.MAX_BYTES
    doc = load_file(str(f))
    assert doc.diagnostics == []
    assert len(doc.data["a"]) == loader.MAX_BYTES - 4


def test_missing_file_is_a_diagnostic(tmp_path: pathlib.Path) -> None:
    doc = load_file(str(tmp_path / "nope.yaml"), display="nope.yaml")
    assert [d.format() for d in doc.diagnostics] == [
        "nope.yaml:1:1: FL013 cannot read the file: no such file or directory"
    ]
    assert doc.data is None
    assert doc.text is None


def test_folder_is_a_diagnostic(tmp_path: pathlib.Path) -> None:
    doc = load_file(str(tmp_path), display="dir")
    assert [(d.code, d.line, d.col) for d in doc.diagnostics] == [("FL013", 1, 1)]
