"""The lint cache and the worker processes never change what ``flowctl lint`` reports.

Every run here is compared with the plain pipeline (``DefinitionSet.load`` then
``lint_workspace``, one process, no cache): the same diagnostics and the same
sources, with the cache cold or warm, in one process or several. Then each
thing a file's results depend on is changed in turn (its content, flowctl's
code, the org directory, a child process, the set of processes) and the
cached run must see it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import invoke

from flowctl.api.definitions import DefinitionSet, expand_paths
from flowctl.definition import files as definition_files
from flowctl.diagnostics import Diagnostic
from flowctl.lint import cache as lint_cache
from flowctl.lint import run as lint_run
from flowctl.lint.rules import lint_workspace
from flowctl.lint.run import lint_paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def reference(paths: list[str], org: str | None = None) -> tuple[list[Diagnostic], dict[str, str]]:
    """What ``lint_paths`` reported before the cache and the workers existed."""
    files = expand_paths(paths)
    extra = [o for o in expand_paths([org]) if o not in files] if org else []
    ws = DefinitionSet.load(files + extra)
    if not ws.orgs and org is None:
        beside = definition_files.org_beside(files)
        if beside is not None and beside not in files:
            ws.orgs.extend(DefinitionSet.load([beside]).orgs)
    diags = sorted(lint_workspace(ws, report_files=set(files)))
    return diags, {d.path: d.text for d in ws.documents if d.text is not None}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(lint_cache.ENV_DIR, str(folder))
    return folder


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("lint/*/*.json"))


CHILD = """\
kind: process
id: child
name: Child
fields:
  amount:
    type: number
stages:
  - id: work
    kind: task
    start: true
    assignee: {user: alice}
    results:
      done: finished
  - id: finished
    kind: end
"""

PARENT = """\
kind: process
id: parent
name: Parent
fields:
  amount:
    type: number
stages:
  - id: run
    kind: subprocess
    start: true
    process: child
    inputs:
      amount: amount
    results:
      finished: done
  - id: done
    kind: end
"""

ORG = """\
kind: org
users:
  - id: alice
    name: Alice
"""


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A folder with every kind of cross-file situation and broken input."""
    d = tmp_path / "defs"
    shutil.copytree(ROOT / "processes", d)
    (d / "child.yaml").write_text(CHILD, encoding="utf-8")
    (d / "parent.yaml").write_text(PARENT, encoding="utf-8")
    (d / "orphan.yaml").write_text(PARENT.replace("id: parent", "id: orphan")
                                   .replace("process: child", "process: chld"), encoding="utf-8")
    (d / "zz-duplicate.yaml").write_text(CHILD, encoding="utf-8")  # FL224
    (d / "second-org.yaml").write_text(ORG, encoding="utf-8")  # FL406
    (d / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + CHILD.replace("id: child", "id: bom")
                                 .encode())
    (d / "latin1.yaml").write_bytes(b"kind: process\nname: caf\xe9\n")
    (d / "broken.yaml").write_text("kind: process\nid: [\n", encoding="utf-8")
    (d / "dangling.yaml").symlink_to(d / "missing-target.yaml")  # FL013
    for name in ("FL204-unknown-stage.yaml", "FL101-unknown-key.yaml", "FL303-condition-"
                 "unknown-field.yaml", "FL401-unknown-user.yaml"):
        src = FIXTURES / "invalid" / name
        if src.exists():
            shutil.copy(src, d / name)
    return d


def test_the_mixed_folder_exercises_every_cross_file_code(mixed: Path) -> None:
    codes = {d.code for d in reference([str(mixed)])[0]}
    assert {"FL224", "FL406", "FL215", "FL013", "FL002", "FL003"} <= codes


@pytest.mark.parametrize("jobs", [1, 3])
def test_cold_and_warm_runs_match_the_plain_pipeline(mixed: Path, cache_dir: Path,
                                                    jobs: int) -> None:
    want = reference([str(mixed)])
    cold = lint_paths([str(mixed)], jobs=jobs)
    assert entries(cache_dir)  # the cold run filled the cache
    warm = lint_paths([str(mixed)], jobs=jobs)
    uncached = lint_paths([str(mixed)], cache=False, jobs=jobs)
    for result in (cold, warm, uncached):
        assert (result.diagnostics, result.sources) == want


def test_fixture_folders_and_org_option_match(cache_dir: Path) -> None:
    for paths, org in (([str(FIXTURES / "invalid")], str(FIXTURES / "org.yaml")),
                       ([str(FIXTURES / "valid"), str(FIXTURES / "catalog")], None),
                       ([str(ROOT / "processes")], None)):
        want = reference(paths, org)
        for _ in range(2):  # cold, then warm
            got = lint_paths(paths, org=org)
            assert (got.diagnostics, got.sources) == want


def test_the_pool_has_one_worker_per_cpu_when_there_are_many_files() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("workers are forked on Linux only")
    assert lint_run._pool_size(3, 10) == 3
    assert lint_run._pool_size(None, 10) == 1  # few files: one process
    assert lint_run._pool_size(1, 500) == 1
    assert lint_run._pool_size(None, 10_000) == lint_run._cpus()


def linux_only() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("workers are forked on Linux only")


def test_several_workers_really_parse_at_the_same_time(mixed: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker waits, at its first file, until the other one is there too:
    the run finishes only if both parse at once, in processes other than this one."""
    linux_only()
    import multiprocessing

    meeting = multiprocessing.get_context("fork").Barrier(2, timeout=60)
    arrived = tmp_path / "pids"
    real = lint_run._summarize
    met: set[int] = set()

    def meet(display: str, data: bytes) -> dict[str, object]:
        if os.getpid() not in met:
            met.add(os.getpid())
            meeting.wait()
            with open(arrived, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\n")
        return real(display, data)

    monkeypatch.setattr(lint_run, "_summarize", meet)
    monkeypatch.setattr(lint_run, "CHUNK", 2)  # tasks enough for both workers
    got = lint_paths([str(mixed)], cache=False, jobs=2)
    assert (got.diagnostics, got.sources) == reference([str(mixed)])
    pids = set(arrived.read_text(encoding="utf-8").split())
    assert len(pids) == 2
    assert str(os.getpid()) not in pids


def test_a_dying_worker_falls_back_to_one_process(mixed: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    linux_only()
    parent = os.getpid()
    real = lint_run._summarize
    here: list[str] = []

    def die_in_a_worker(display: str, data: bytes) -> dict[str, object]:
        if os.getpid() != parent:
            os._exit(1)  # as when the kernel kills a worker: the pool breaks
        here.append(display)
        return real(display, data)

    monkeypatch.setattr(lint_run, "_summarize", die_in_a_worker)
    got = lint_paths([str(mixed)], cache=False, jobs=2)
    assert (got.diagnostics, got.sources) == reference([str(mixed)])
    assert len(here) == len([f for f in got.files if os.path.exists(f)])  # all parsed here


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_counts_every_file_once(mixed: Path, jobs: int) -> None:
    for _ in range(2):  # cold, then warm
        calls: list[int] = []
        got = lint_paths([str(mixed)], jobs=jobs, progress=calls.append)
        assert sum(calls) == len(got.files)
        assert all(n > 0 for n in calls)


def test_progress_starts_after_the_workers(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first ``progress`` call comes once the workers are forked, so that
    a caller may start a thread then (a progress bar) without forking after it."""
    linux_only()
    import multiprocessing

    monkeypatch.setattr(lint_run, "CHUNK", 2)
    lint_paths([str(mixed / "child.yaml")])  # one file in the cache: reported at once
    workers: list[int] = []

    def first(n: int) -> None:
        if not workers:
            workers.append(len(multiprocessing.active_children()))

    lint_paths([str(mixed)], jobs=2, progress=first)
    assert workers == [2]


# ---------------------------------------------------------------- invalidation


def codes_of(folder: Path, name: str) -> list[str]:
    path = str(folder / name)
    return [d.code for d in lint_paths([str(folder)]).diagnostics if d.file == path]


@pytest.fixture
def family(tmp_path: Path) -> Path:
    d = tmp_path / "family"
    d.mkdir()
    (d / "child.yaml").write_text(CHILD, encoding="utf-8")
    (d / "parent.yaml").write_text(PARENT, encoding="utf-8")
    (d / "org.yaml").write_text(ORG, encoding="utf-8")
    return d


def test_an_edited_file_is_linted_again(family: Path) -> None:
    assert codes_of(family, "child.yaml") == []
    text = CHILD.replace("done: finished", "done: finishd")
    (family / "child.yaml").write_text(text, encoding="utf-8")
    assert "FL204" in codes_of(family, "child.yaml")


def test_an_edited_org_directory_reaches_unchanged_processes(family: Path) -> None:
    assert codes_of(family, "child.yaml") == []
    (family / "org.yaml").write_text(ORG.replace("alice", "bob"), encoding="utf-8")
    assert codes_of(family, "child.yaml") == ["FL401"]


def test_an_edited_child_reaches_its_unchanged_parent(family: Path) -> None:
    assert codes_of(family, "parent.yaml") == []
    (family / "child.yaml").write_text(CHILD.replace("finished", "complete"), encoding="utf-8")
    assert codes_of(family, "parent.yaml") == ["FL216"]
    (family / "child.yaml").write_text(CHILD.replace("amount", "total"), encoding="utf-8")
    assert codes_of(family, "parent.yaml") == ["FL216"]


def test_the_set_of_processes_reaches_an_unchanged_parent(family: Path) -> None:
    (family / "child.yaml").unlink()
    first = lint_paths([str(family)]).diagnostics
    assert [d.code for d in first] == ["FL215"]
    assert "(known: parent)" in first[0].message
    (family / "other.yaml").write_text(CHILD.replace("id: child", "id: other"),
                                       encoding="utf-8")
    again = [d for d in lint_paths([str(family)]).diagnostics if d.code == "FL215"]
    assert "(known: other, parent)" in again[0].message


def test_a_new_flowctl_version_does_not_read_old_entries(family: Path, cache_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    lint_paths([str(family)])
    # plant a wrong result in every entry: the same version reads it back...
    for path in entries(cache_dir):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"diags":[]', '"diags":[[1,1,"FL999","planted","error",'
                                     'null,null]]', 1), encoding="utf-8")
    assert "FL999" in {d.code for d in lint_paths([str(family)]).diagnostics}
    # ...another version (or changed code) does not
    monkeypatch.setattr(lint_cache, "__version__", "99.0")
    lint_cache.code_digest.cache_clear()
    try:
        assert lint_paths([str(family)]).diagnostics == []
    finally:
        lint_cache.code_digest.cache_clear()


def test_a_deleted_or_corrupt_cache_changes_nothing(mixed: Path, cache_dir: Path) -> None:
    want = reference([str(mixed)])
    lint_paths([str(mixed)])
    for path in entries(cache_dir):
        path.write_bytes(b"{not json")
    got = lint_paths([str(mixed)])
    assert (got.diagnostics, got.sources) == want
    shutil.rmtree(cache_dir)
    got = lint_paths([str(mixed)])
    assert (got.diagnostics, got.sources) == want


def test_an_unwritable_cache_is_ignored(family: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv(lint_cache.ENV_DIR, str(blocker / "cache"))
    assert lint_paths([str(family)]).diagnostics == []


def test_no_cache_neither_reads_nor_writes(family: Path, cache_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(family)
    result = invoke(["lint", "--no-cache", "."])
    assert result.exit_code == 0, result.output
    assert not cache_dir.exists()
    result = invoke(["lint", "."])
    assert result.exit_code == 0
    assert len(entries(cache_dir)) == 3


def test_old_entries_are_pruned_once_a_day(tmp_path: Path) -> None:
    store = lint_cache.LintCache(str(tmp_path))
    store.put("ab" + "0" * 62, {"summary": {}})
    store.put("cd" + "1" * 62, {"summary": {}})
    old = tmp_path / "lint" / "ab" / ("ab" + "0" * 62 + ".json")
    os.utime(old, (0, 0))
    now = lint_cache.MAX_AGE + 10.0
    assert store.prune(now=now) == 1
    assert not old.exists()
    assert store.get("cd" + "1" * 62) is not None
    assert store.prune(now=now) == 0  # not again within a day


# ---------------------------------------------------------------- the key


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the flowctl package that the code digest is computed from."""
    copy = tmp_path / "flowctl"
    shutil.copytree(lint_cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(lint_cache, "PACKAGE", str(copy))
    lint_cache.code_digest.cache_clear()
    yield copy
    lint_cache.code_digest.cache_clear()


def fresh_key() -> str:
    lint_cache.code_digest.cache_clear()
    return lint_cache.file_key("p.yaml", b"kind: process\n")


def test_the_key_changes_with_every_module_and_schema(package: Path) -> None:
    keys = {fresh_key()}
    for rel in ("lint/rules.py", "definition/loader.py", "model.py", "api/definitions.py",
                "schemas/process.schema.json", "schemas/org.schema.json"):
        path = package / rel
        path.write_bytes(path.read_bytes() + b"\n")
        keys.add(fresh_key())
    (package / "definition" / "new_module.py").write_text("X = 1\n", encoding="utf-8")
    keys.add(fresh_key())
    assert len(keys) == 8
    assert fresh_key() in keys  # and it is stable while nothing changes


def test_the_key_changes_with_a_dependency_python_and_the_time_zones(
        package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "somedep").mkdir(parents=True)
    init = site / "somedep" / "__init__.py"
    init.write_text('__version__ = "1.0"\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(lint_cache, "_LIBRARIES", (*lint_cache._LIBRARIES, "somedep"))
    tz = tmp_path / "zoneinfo"
    tz.mkdir()
    import zoneinfo

    monkeypatch.setattr(zoneinfo, "TZPATH", (str(tz),))
    keys = [fresh_key()]
    init.write_text('__version__ = "1.0.1"\n', encoding="utf-8")  # a new version installed
    keys.append(fresh_key())
    monkeypatch.setattr(sys, "version", "3.99.0 (another python)")
    keys.append(fresh_key())
    (tz / "Europe").mkdir()  # the time-zone database was updated
    keys.append(fresh_key())
    assert len(set(keys)) == 4


def test_the_key_changes_with_the_file_and_its_name() -> None:
    keys = {lint_cache.file_key("p.yaml", b"id: a\n"), lint_cache.file_key("p.yaml", b"id: b\n"),
            lint_cache.file_key("q.yaml", b"id: a\n"),
            lint_cache.entry_key("valid stored", b"id: a\n")}
    assert len(keys) == 4


def test_the_digest_reads_every_module_lint_and_the_runtime_import() -> None:
    """Whatever the lint pipeline and the definition loaders import is in the digest."""
    import flowctl.api.definitions  # noqa: F401
    import flowctl.lint.run  # noqa: F401

    covered = set(lint_cache._package_files(lint_cache.PACKAGE))
    imported = {os.path.relpath(str(m.__file__), lint_cache.PACKAGE)
                for name, m in list(sys.modules.items())
                if name.split(".")[0] == "flowctl" and getattr(m, "__file__", None)}
    assert "lint/run.py" in imported
    assert imported <= covered
    assert {"schemas/process.schema.json", "schemas/org.schema.json"} <= covered
