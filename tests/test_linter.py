"""Data-driven linter tests: every fixture in tests/fixtures/invalid/ gives
exactly the diagnostics in the ``.out`` file beside it; everything in
tests/fixtures/valid/ and processes/ lints clean.

Regenerate the ``.out`` files after a deliberate message change with
``UPDATE_FIXTURES=1 pytest tests/test_linter.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from flowctl import api
from flowctl.lint.codes import RULES

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("tests/fixtures")
ORG = str(FIXTURES / "org.yaml")
CATALOG = [str(p) for p in sorted((ROOT / FIXTURES / "catalog").glob("*.yaml"))]
INVALID = sorted((ROOT / FIXTURES / "invalid").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _lines(paths: list[str]) -> list[str]:
    result = api.lint_paths(paths, org=ORG)
    return [d.format() for d in result.diagnostics]


@pytest.mark.parametrize("fixture", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_gives_exact_diagnostics(fixture: Path) -> None:
    rel = str(fixture.relative_to(ROOT))
    got = [line for line in _lines([rel, *map(_rel, CATALOG)]) if line.startswith(rel + ":")]
    expected_file = fixture.with_suffix(".out")
    if os.environ.get("UPDATE_FIXTURES"):
        expected_file.write_text("".join(line + "\n" for line in got), encoding="utf-8")
    expected = expected_file.read_text(encoding="utf-8").splitlines()
    assert got == expected
    code = fixture.stem.split("-", 1)[0]
    assert any(f": {code} " in line for line in got), f"{code} not reported by its fixture"


def _rel(p: str) -> str:
    return str(Path(p).relative_to(ROOT))


def test_valid_fixtures_and_catalog_lint_clean() -> None:
    result = api.lint_paths([str(FIXTURES / "valid"), str(FIXTURES / "catalog")], org=ORG)
    assert [d.format() for d in result.diagnostics] == []
    assert result.exit_code() == 0


def test_examples_lint_clean() -> None:
    result = api.lint_paths(["processes"])
    assert [d.format() for d in result.diagnostics] == []
    assert len(result.files) == 6


def test_every_rule_has_an_invalid_fixture_or_a_dedicated_test() -> None:
    covered = {p.stem.split("-", 1)[0] for p in INVALID}
    dedicated = {"FL224", "FL404", "FL406"}  # multi-file cases, tested below
    loader_and_schema = {c for c in RULES if c < "FL200"}  # tests/test_loader.py, test_schema.py
    assert set(RULES) - covered - dedicated - loader_and_schema == set()


def test_every_valid_fixture_fixes_its_invalid_twin() -> None:
    valid = {p.name for p in (ROOT / FIXTURES / "valid").glob("*.yaml")}
    invalid = {p.name for p in INVALID} - {"FL405-org-integrity.yaml"}
    assert valid == invalid


def test_duplicate_process_id_across_files(tmp_path: Path) -> None:
    src = (ROOT / FIXTURES / "valid" / "FL201-no-start.yaml").read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(src, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(src, encoding="utf-8")
    lines = _lines([str(tmp_path)])
    assert lines == [f"{tmp_path}/b.yaml:2:5: FL224 process id 'no-start' is also defined in "
                     f"{tmp_path}/a.yaml"]


def test_no_org_directory_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = (ROOT / FIXTURES / "valid" / "FL402-unknown-role.yaml").read_text(encoding="utf-8")
    (tmp_path / "p.yaml").write_text(src, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # no workspace, so no default org directory either
    monkeypatch.delenv("FLOWCTL_ORG", raising=False)
    result = api.lint_paths([str(tmp_path)])
    assert [d.format() for d in result.diagnostics] == [
        f"{tmp_path}/p.yaml:1:1: FL404 no org directory found (org.yaml beside the file, the "
        "workspace's, or --org PATH): users, roles and departments were not checked"
    ]
    assert result.exit_code() == 0
    assert result.exit_code(strict=True) == 1


def test_org_beside_the_file_is_found(tmp_path: Path) -> None:
    src = (ROOT / FIXTURES / "invalid" / "FL402-unknown-role.yaml").read_text(encoding="utf-8")
    (tmp_path / "p.yaml").write_text(src, encoding="utf-8")
    (tmp_path / "org.yaml").write_text((ROOT / ORG).read_text(encoding="utf-8"), "utf-8")
    codes = [d.code for d in api.lint_paths([str(tmp_path / "p.yaml")]).diagnostics]
    assert codes == ["FL402"]


def test_two_org_directories(tmp_path: Path) -> None:
    org = (ROOT / ORG).read_text(encoding="utf-8")
    (tmp_path / "org.yaml").write_text(org, encoding="utf-8")
    (tmp_path / "people.yaml").write_text(org, encoding="utf-8")
    lines = _lines([str(tmp_path)])
    assert lines == [f"{tmp_path}/people.yaml:1:1: FL406 a second org directory; "
                     f"{tmp_path}/org.yaml is already the org directory of this lint"]


def test_output_is_sorted_and_stable() -> None:
    paths = [str(p.relative_to(ROOT)) for p in INVALID]
    first = _lines(paths)
    assert first == sorted(first, key=_sort_key)
    assert first == _lines(list(reversed(paths)))


def _sort_key(line: str) -> tuple[str, int, int]:
    m = re.match(r"(.*?):(\d+):(\d+): ", line)
    assert m
    return m.group(1), int(m.group(2)), int(m.group(3))


def test_every_lint_code_names_one_rule() -> None:
    """Two rules under one code would hide one of them (RULES keeps the last)."""
    from flowctl.lint import codes

    seen: dict[str, list[str]] = {}
    for r in codes._ALL:
        seen.setdefault(r.code, []).append(r.name)
    assert {code: names for code, names in seen.items() if len(names) > 1} == {}
