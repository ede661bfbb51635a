"""Definitions the runtime reads are parsed once, then built from remembered data.

``load_org``, ``load_process`` and ``load_stored`` keep the plain data of a
document that loaded clean in the definition cache (beside lint's results),
keyed by its bytes and what its validity depends on. These tests prove the
second read parses nothing, gives the same model, and that any change (of the
file, or of the org directory a process was checked against) is parsed and
judged afresh.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from flowctl.api import definitions
from flowctl.api.definitions import DefinitionError, load_org, load_process, load_stored
from flowctl.definition import files, loader
from flowctl.lint import cache as lint_cache

ROOT = Path(__file__).resolve().parent.parent
KEY = "key-account-filing-approval"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCTL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "processes" / "org.yaml", tmp_path / "org.yaml")
    shutil.copy(ROOT / "processes" / f"{KEY}.yaml", tmp_path / f"{KEY}.yaml")
    return tmp_path


class Parses:
    """Counts calls of the YAML loader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = loader.load_bytes

        def counting(data: bytes, display: str) -> Any:
            self.count += 1
            return real(data, display)

        monkeypatch.setattr(files, "load_bytes", counting)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Parses:
    return Parses(monkeypatch)


def test_the_second_read_parses_nothing_and_builds_the_same_model(folder: Path,
                                                                    parses: Parses) -> None:
    org1 = load_org(processes_dir=str(folder))
    proc1 = load_process(KEY, processes_dir=str(folder))
    first = parses.count
    assert first == 3  # the org; the process and the org beside it
    org2 = load_org(processes_dir=str(folder))
    proc2 = load_process(KEY, processes_dir=str(folder))
    assert parses.count == first
    assert org2 == org1
    assert proc2 == proc1


def test_a_changed_file_is_parsed_and_judged_again(folder: Path, parses: Parses) -> None:
    load_org(processes_dir=str(folder))
    org = folder / "org.yaml"
    org.write_text(org.read_text(encoding="utf-8") + "bogus: 1\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match="is not a valid org directory"):
        load_org(processes_dir=str(folder))
    assert parses.count == 2


def test_a_process_is_judged_again_when_its_org_directory_changes(folder: Path) -> None:
    load_process(KEY, processes_dir=str(folder))
    org = folder / "org.yaml"
    text = org.read_text(encoding="utf-8")
    assert "  - id: sales\n" in text
    org.write_text(text.replace("  - id: sales\n", "  - id: trade\n").replace(
        "department: sales", "department: trade"), encoding="utf-8")
    load_org(processes_dir=str(folder))  # the org directory itself is fine
    with pytest.raises(DefinitionError, match="FL40"):
        load_process(KEY, processes_dir=str(folder))


def test_an_invalid_definition_is_never_remembered(folder: Path, parses: Parses) -> None:
    bad = (ROOT / "processes" / f"{KEY}.yaml").read_text(encoding="utf-8").replace(
        "kind: end", "kind: finish", 1)
    for _ in range(2):
        with pytest.raises(DefinitionError, match="cannot be read"):
            load_stored(bad, "stored@1")
    assert parses.count == 2


def test_stored_text_is_remembered_by_content(parses: Parses) -> None:
    text = (ROOT / "processes" / f"{KEY}.yaml").read_text(encoding="utf-8")
    one = load_stored(text, f"{KEY}@1")
    two = load_stored(text, f"{KEY}@1")
    assert one == two
    assert parses.count == 1


def test_without_a_usable_cache_folder_everything_still_works(
    folder: Path, parses: Parses, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = folder / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("FLOWCTL_CACHE_DIR", str(blocker))
    for _ in range(2):
        assert load_org(processes_dir=str(folder)).users
    assert parses.count == 2


def test_the_key_covers_the_code_digest(folder: Path, monkeypatch: pytest.MonkeyPatch,
                                        parses: Parses) -> None:
    load_org(processes_dir=str(folder))

    monkeypatch.setattr(lint_cache, "code_digest", lambda: "another flowctl")
    load_org(processes_dir=str(folder))
    assert parses.count == 2
    assert definitions._Remembered("org", b"x").key != definitions._Remembered("stored", b"x").key


def test_the_key_is_the_definition_caches_key_of_every_input() -> None:
    """One key scheme with lint's entries: ``entry_key`` of the kind and the inputs."""
    process = definitions._Remembered("process", b"kind: process\n", b"kind: org\n")
    assert process.key == lint_cache.entry_key("valid process", b"kind: org\n",
                                               b"kind: process\n")
    other_org = definitions._Remembered("process", b"kind: process\n", b"kind: org\nx: 1\n")
    other_file = definitions._Remembered("process", b"kind: process\nx: 1\n", b"kind: org\n")
    assert len({process.key, other_org.key, other_file.key}) == 3
    unreadable = loader.read_source("/no/such/org.yaml", "org.yaml")
    assert definitions._Remembered("process", b"kind: process\n", unreadable).key is None
