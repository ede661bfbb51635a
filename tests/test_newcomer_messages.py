"""Messages a newcomer understands: each refusal or diagnostic says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


# -- 3. --as Linda: suggest linda; refusals say whom to ask, never to act as them

KEY = "key-account-filing-approval"
K1 = f"{KEY}-1"
ORG = f"{PROCESSES}/org.yaml"


def _env(tmp_path: Path, user: str | None = None) -> dict[str, str | None]:
    return {
        "FLOWCTL_DB": str(tmp_path / "f.db"),
        "FLOWCTL_PROCESSES": str(PROCESSES),
        "FLOWCTL_NOW": "2026-11-23T09:00:00Z",
        "FLOWCTL_ORG": None,
        "FLOWCTL_USER": user,
        "FLOWCTL_DEBUG": None,
    }


@pytest.mark.parametrize(
    ("args", "user", "expected"),
    [
        (["--as", "Linda"], None,
         f"flowctl: error: unknown user 'Linda' (from --as): not in the org directory {ORG};"
         " did you mean 'linda'? (user ids are lowercase)\n"
         "flowctl: hint: if you are linda, use --as linda\n"),
        (["--as", "lynda"], None,
         f"flowctl: error: unknown user 'lynda' (from --as): not in the org directory {ORG};"
         " did you mean 'linda'?\n"
         "flowctl: hint: if you are linda, use --as linda\n"),
        ([], "Carol",
         f"flowctl: error: unknown user 'Carol' (from FLOWCTL_USER): not in the org directory"
         f" {ORG}; did you mean 'carol'? (user ids are lowercase)\n"
         "flowctl: hint: if you are carol, use FLOWCTL_USER=carol\n"),
        (["--as", "zed"], None,
         f"flowctl: error: unknown user 'zed' (from --as): not in the org directory {ORG};"
         " known users: grace, carol, alice, bob, frank, linda, oleg, dmitry\n"
         "flowctl: hint: say who you are with --as USER or FLOWCTL_USER=USER\n"),
    ],
    ids=["case", "spelling", "env-case", "unknown"],
)
def test_unknown_user_suggests_the_id_meant(
    tmp_path: Path, args: list[str], user: str | None, expected: str
) -> None:
    result = invoke(["start", KEY, *args], env=_env(tmp_path, user))
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected)


@pytest.mark.parametrize(
    ("value", "hint"),
    [("Alice", "did you mean 'alice'? (user ids are lowercase)"),
     ("alise", "did you mean 'alice'?"),
     ("zzzz", "known users: grace, carol, alice, bob, frank and 3 more")],
    ids=["case", "spelling", "unknown"],
)
def test_a_user_field_value_suggests_the_id_meant(tmp_path: Path, value: str, hint: str) -> None:
    result = invoke(["start", KEY, "--as", "alice", "--set", f"owner={value}"],
                    env=_env(tmp_path))
    assert (result.exit_code, result.stderr) == (2, (
        f"flowctl: error: field 'owner' must be a user of the org directory; '{value}' is not "
        f"one\nflowctl: hint: {hint}\n"))
    assert not (tmp_path / "f.db").exists()


def test_refusals_say_whom_to_ask_and_never_to_act_as_someone_else(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert invoke(["start", KEY, "--as", "alice", "--set", "owner=alice"], env=env).exit_code == 0
    assert invoke(["advance", K1, "--as", "alice", "-r", "done", "--set", "level=key"],
                  env=env).exit_code == 0
    cases = [
        (["advance", K1, "--as", "bob", "-r", "approve"],
         "flowctl: error: only carol (head of sales) can approve 'level-approval'\n"
         "flowctl: hint: you are bob; ask carol (head of sales), or an admin (grace)\n"),
        (["cancel", K1, "--as", "bob"],
         f"flowctl: error: only alice (initiator) or an admin can cancel {K1}\n"
         "flowctl: hint: you are bob; ask alice (initiator), or an admin (grace)\n"),
        (["pause", K1, "--as", "bob"],
         f"flowctl: error: only the initiator (alice), the assignee or an admin can pause {K1}\n"
         "flowctl: hint: you are bob; ask carol (head of sales) or alice, or an admin (grace)\n"),
        (["start", KEY, "--as", "frank"],
         f"flowctl: error: frank may not start '{KEY}'; it is started by: department sales\n"
         "flowctl: hint: you are frank; ask one of them to start it\n"),
    ]
    for args, expected in cases:
        result = invoke(args, env=env)
        assert (result.exit_code, result.stderr) == (1, expected), args
        assert "--as" not in result.stderr


def test_task_refusal_names_who_holds_the_task(tmp_path: Path) -> None:
    env = _env(tmp_path)
    lost = "lost-customer-recovery"
    for args in (["start", lost, "--set", "owner=bob", "--set", "customer=ACME"],
                 ["advance", f"{lost}-1", "-r", "reached"],
                 ["advance", f"{lost}-1", "-r", "done", "--set", "reason=price"]):
        assert invoke([*args, "--as", "bob"], env=env).exit_code == 0, args
    result = invoke(["task", "done", f"{lost}-1", "check-prices", "--as", "alice"], env=env)
    assert (result.exit_code, result.stderr) == (
        1,
        "flowctl: error: only bob (record.owner) can mark task 'check-prices' done\n"
        "flowctl: hint: you are alice; ask bob (record.owner), or an admin (grace)\n",
    )


def test_no_hint_in_the_code_tells_to_act_as_someone_else() -> None:
    for path in (ROOT / "flowctl").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "act as them" not in text, path
        assert "as someone who may" not in text, path


# -- 4. every command's --help has examples


def _command_paths() -> list[list[str]]:
    """Every command and subcommand of ``flowctl``, depth first (the root is [])."""
    import typer

    from flowctl.cli.app import command

    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append(path)
        if hasattr(cmd, "list_commands"):  # a group (typer may bring its own click)
            ctx = typer.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])

    walk(command(), [])
    return out


def test_the_walk_finds_the_subcommands() -> None:
    paths = [" ".join(p) for p in _command_paths()]
    for expected in ("task", "task list", "task done", "notifications", "notifications read",
                     "notifications deliver", "schema", "journal"):
        assert expected in paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "flowctl")
def test_every_help_has_examples(path: list[str]) -> None:
    result = invoke([*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "\n  Examples:\n" in result.stdout
    examples = result.stdout.split("\n  Examples:\n", 1)[1]
    assert f"flowctl {' '.join(path)}".rstrip() in examples


# -- 5. an unknown instance: a hint from this store, not the bundled example


def test_unknown_instance_in_an_empty_store_says_start_one(tmp_path: Path) -> None:
    from flowctl.store.sqlite import SqliteStore

    SqliteStore.open(str(tmp_path / "f.db")).close()
    result = invoke(["show", f"{KEY}-1", "--as", "alice"], env=_env(tmp_path))
    assert (result.exit_code, result.stderr) == (
        2,
        f"flowctl: error: no instance '{KEY}-1': no instance was started in this store yet\n"
        "flowctl: hint: start one with `flowctl start PROCESS`\n",
    )


def test_unknown_instance_names_the_closest_or_the_newest_id(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for args in (["start", "contract-approval", "--set", "customer=Acme"],
                 ["start", "contract-approval", "--set", "customer=Beta"],
                 ["start", "lost-customer-recovery", "--set", "owner=bob",
                  "--set", "customer=ACME"]):
        assert invoke([*args, "--as", "bob"], env=env).exit_code == 0, args
    cases = [
        (["show", "contract-aproval-2"],
         "flowctl: error: no instance 'contract-aproval-2'; did you mean 'contract-approval-2'?\n"
         "flowctl: hint: `flowctl list` shows the instances\n"),
        (["advance", "INV-2041", "-r", "done"],
         "flowctl: error: no instance 'INV-2041'\n"
         "flowctl: hint: `flowctl list` shows the instances"
         " (the newest is lost-customer-recovery-1)\n"),
        (["journal", "zzz"],
         "flowctl: error: no instance 'zzz'\n"
         "flowctl: hint: `flowctl list` shows the instances"
         " (the newest is lost-customer-recovery-1)\n"),
    ]
    for args, expected in cases:
        result = invoke(args, env={**env, "FLOWCTL_USER": "bob"})
        assert (result.exit_code, result.stderr) == (2, expected), args
        assert KEY not in result.stderr


# -- 6. repeated filters of list and journal match any of their values


def _started(tmp_path: Path) -> dict[str, str | None]:
    env = _env(tmp_path)
    for i, (user, args) in enumerate([
        ("alice", ["contract-approval", "--set", "customer=Acme"]),
        ("bob", ["lost-customer-recovery", "--set", "owner=bob", "--set", "customer=ACME"]),
        ("alice", [KEY, "--set", "owner=alice"]),
        ("bob", ["contract-approval", "--set", "customer=Beta"]),
    ]):
        now = f"2026-11-23T09:0{i}:00Z"
        result = invoke(["start", *args, "--as", user], env={**env, "FLOWCTL_NOW": now})
        assert result.exit_code == 0, result.output
    return {**env, "FLOWCTL_NOW": "2026-11-23T10:00:00Z", "FLOWCTL_USER": "alice"}


def _ids(result: Any) -> list[str]:
    assert result.exit_code == 0, result.output
    return [item["id"] for item in json.loads(result.stdout)]


def test_list_with_several_processes_shows_each_of_them(tmp_path: Path) -> None:
    env = _started(tmp_path)
    both = ["--process", "contract-approval", "--process", "lost-customer-recovery"]
    env = {**env, "FLOWCTL_USER": "grace"}  # an admin sees every instance
    assert _ids(invoke(["list", *both, "--json"], env=env)) == [
        "contract-approval-2", "lost-customer-recovery-1", "contract-approval-1"]
    assert _ids(invoke(["list", *both, "-n", "2", "--json"], env=env)) == [
        "contract-approval-2", "lost-customer-recovery-1"]
    assert _ids(invoke(["list", "--process", KEY, "--process", KEY, "--json"], env=env)) == [
        f"{KEY}-1"]
    assert _ids(invoke(["list", "--assignee", "bob", "--assignee", "alice", "--json"],
                       env=env)) == [
        "contract-approval-2", f"{KEY}-1", "lost-customer-recovery-1", "contract-approval-1"]


def test_journal_with_several_processes_and_actors(tmp_path: Path) -> None:
    env = {**_started(tmp_path), "FLOWCTL_USER": "grace"}  # an admin sees every instance
    result = invoke(["journal", "--process", "lost-customer-recovery", "--process", KEY,
                     "--actor", "bob", "--actor", "alice", "--json"], env=env)
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert {(e["instance"], e["actor"]) for e in entries} == {
        ("lost-customer-recovery-1", "bob"), (f"{KEY}-1", "alice")}
    one = invoke(["journal", "--process", KEY, "--json"], env=env)
    assert [e for e in entries if e["instance"] == f"{KEY}-1"] == json.loads(one.stdout)


# -- 7. lint shows a window of a very long line, the caret under the column


def test_a_long_line_is_cut_around_the_column() -> None:
    from flowctl.lint.reporters import caret_lines

    line = "x" * 1000 + "ERR" + "y" * 1000
    assert caret_lines(line, 1001, 1004) == (
        "…" + "x" * 58 + "ERR" + "y" * 57 + "…", " " * 59 + "^^^")
    assert caret_lines(line, 1) == ("x" * 118 + "…", "^")
    assert caret_lines(line, len(line) + 1) == ("…" + "y" * 118, " " * 119 + "^")


def test_a_long_cjk_line_is_cut_and_the_caret_counts_wide_cells() -> None:
    from flowctl.lint.reporters import caret_lines

    line = "名" * 50000 + "错" + "名" * 50000
    shown, marker = caret_lines(line, 50001)
    assert shown == "…" + "名" * 29 + "错" + "名" * 29 + "…"
    assert marker == " " * (1 + 29 * 2) + "^^"


def test_lint_of_a_200000_character_line_prints_a_window(tmp_path: Path) -> None:
    long = "x" * 200000
    tail = ", colour: red, results: {done: finish}}"
    (tmp_path / "long.yaml").write_text(
        "kind: process\nid: long\nname: Long\nstages:\n"
        "  - {id: work, kind: task, start: true, assignee: initiator, description: "
        + long + tail + "\n  - {id: finish, kind: end}\n",
        encoding="utf-8",
    )
    result = invoke(["lint", "--no-cache", str(tmp_path / "long.yaml")])
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert out[0].endswith(":5:200077: FL101 unknown key 'colour' in task stage 'work';"
                           " allowed: id, kind, name, description, phase, start, assignee,"
                           " fields, sla, on_enter, set, exclude, results, must_change, validate,"
                           " notify")
    assert out[1] == "5 | …" + "x" * (118 - len(tail)) + tail
    assert out[2] == "  | " + " " * (1 + 118 - len(tail) + 2) + "^"
    assert max(len(line) for line in out) < 300


# -- 8. diagram labels never break inside a quoted value

QUOTED_PROCESS = """\
kind: process
id: quoted
name: Quoted
fields:
  level:
    type: enum
    values: [normal, key account]
stages:
  - id: edit
    kind: task
    start: true
    assignee: initiator
    results:
      done: check
  - id: check
    kind: decision
    branches:
      - when: record.level == "key account"
        to: approve
    default: finish
  - id: approve
    kind: task
    assignee: initiator
    results:
      done: finish
  - id: finish
    kind: end
"""


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ('record.level == "key account"', 26, ("record.level ==", '"key account"')),
        ('record.level == "key account" and record.amount > 5', 20,
         ("record.level ==", '"key account" and', "record.amount > 5")),
        ('record.note == "a quoted value wider than the line" or x', 16,
         ("record.note ==", '"a quoted value wider than the line"', "or x")),
        ("record.x == 'it\\'s a b' and y", 10, ("record.x", "==", "'it\\'s a b'", "and y")),
        ("Customer's and Partner's big review", 16,
         ("Customer's and", "Partner's big", "review")),
        ("审批审批审批审批审批", 8, ("审批审批", "审批审批", "审批")),
    ],
)
def test_wrap_breaks_only_at_spaces_outside_quotes(
    text: str, width: int, lines: tuple[str, ...]
) -> None:
    from flowctl.diagram.text import wrap

    assert wrap(text, width) == lines


def test_rendered_condition_keeps_its_quoted_value_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "quoted.yaml"
    path.write_text(QUOTED_PROCESS, encoding="utf-8")
    mermaid = invoke(["render", str(path), "--format", "mermaid"])
    assert mermaid.exit_code == 0, mermaid.output
    assert ('    s_check -->|"record.level ==<br>#quot;key account#quot;"| s_approve\n'
            in mermaid.stdout)
    dot = invoke(["render", str(path), "--format", "dot"])
    assert dot.exit_code == 0, dot.output
    assert ('  "check" -> "approve" [label=<record.level ==<BR/>&quot;key account&quot;>,'
            in dot.stdout)


# -- 9. render --format mermaid warns past Mermaid's default limits


def _chain(pid: str, n: int, *, name: str = "", skip: bool = True) -> str:
    lines = ["kind: process", f"id: {pid}", f"name: {pid}", "stages:"]
    for i in range(1, n + 1):
        lines += [f"  - id: s{i}", "    kind: task", f"    name: Step {i} {name}".rstrip(),
                  *(["    start: true"] if i == 1 else []),
                  "    assignee: initiator", "    results:",
                  f"      done: {f's{i + 1}' if i < n else 'finish'}",
                  *(["      skip: finish"] if skip and i < n else [])]
    return "\n".join([*lines, "  - id: finish", "    kind: end", ""])


def test_mermaid_counts_edges_as_mermaid_does() -> None:
    from flowctl.diagram.mermaid import counts

    # the edges the real Mermaid (tests/mermaid/parse.mjs) finds in the goldens
    for name, edges in [("contract-approval", 15), ("goods-delivery", 6),
                        ("key-account-filing-approval", 7), ("lost-customer-recovery", 12)]:
        text = (ROOT / "tests" / "golden" / f"{name}.mmd").read_text(encoding="utf-8")
        body = text.split("\n---\n", 1)[1]
        assert counts(text) == (edges, len(body)), name


@pytest.mark.parametrize(
    ("stages", "name", "skip", "warning"),
    [
        (250, "", True, None),  # the start, then done and skip but at the last: 500 edges
        (251, "", True, "502 edges, more than Mermaid draws by default (maxEdges 500)"),
        (150, "x" * 300, False,
         "77067 characters of Mermaid text, more than Mermaid draws by default"
         " (maxTextSize 50000)"),
    ],
    ids=["500-edges", "502-edges", "long-text"],
)
def test_render_mermaid_warns_past_the_default_limits(
    tmp_path: Path, stages: int, name: str, skip: bool, warning: str | None
) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(_chain("big", stages, name=name, skip=skip), encoding="utf-8")
    result = invoke(["render", str(path), "--format", "mermaid"])
    assert result.exit_code == 0
    assert result.stdout.startswith("---\ntitle:")
    expected = "" if warning is None else (
        f"flowctl: warning: big: {warning}: viewers with Mermaid's default settings show an"
        " error instead of the diagram; --format svg draws it\n")
    assert result.stderr == expected
    dot = invoke(["render", str(path), "--format", "dot"])
    assert (dot.exit_code, dot.stderr) == (0, "")
