"""Property: whatever a pull request does to a definition, lint never raises
and always ends with exit code 0, 1 or 2."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from flowctl import api

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "processes").glob("*.yaml"))
TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
DATA = [YAML(typ="safe").load(t) for t in TEXTS]

SETTINGS = settings(
    max_examples=int(os.environ.get("FLOWCTL_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["initiator", "end", "done", "approve", "record.level == 'key'", "24h",
                     "task", "decision", "approval", "wait", "subprocess", "key", "x-y"]),
)


def _lint_text(tmp: Path, text: str | bytes) -> int:
    path = tmp / "mutant.yaml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    org = str(ROOT / "processes" / "org.yaml")
    result = api.lint_paths([str(path)], org=org)
    code = result.exit_code()
    assert code in (0, 1, 2)
    for d in result.diagnostics:
        assert d.line >= 1, d
        assert d.col >= 1, d
    return code


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    doc = json.loads(json.dumps(data))
    if not path:
        return value if op == "replace" else doc
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif op == "wrap":
        parent[last] = [parent[last]]
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(parent[last])
    return doc


@SETTINGS
@given(st.data())
def test_data_mutations_never_crash(tmp_path: Path, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(DATA))
    mutant = base
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(_paths(mutant)))
        op = data.draw(st.sampled_from(["delete", "replace", "wrap", "duplicate"]))
        mutant = _mutate(mutant, path, op, data.draw(scalars))
    buf = io.StringIO()
    YAML(typ="safe").dump(mutant, buf)
    _lint_text(tmp_path, buf.getvalue())


@SETTINGS
@given(st.data())
def test_text_mutations_never_crash(tmp_path: Path, data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(TEXTS))
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "indent", "dedent", "insert", "swap"]))
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
        elif op == "insert":
            lines.insert(i, data.draw(st.text(max_size=30)) + "\n")
        elif op == "swap" and len(lines) > 1:
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    _lint_text(tmp_path, "".join(lines))


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(tmp_path: Path, blob: bytes) -> None:
    _lint_text(tmp_path, blob)
