"""What users see: tables, colour, progress and the one width function.

- Piped (not a terminal) the listings are plain, stable text with no escape
  code, and rich is not even imported.
- On a terminal they are rich tables that fit its width, CJK counting two
  columns; with NO_COLOR or ``--no-color`` there is no escape code for
  colour or style at all.
- A progress bar goes to stderr, only on a terminal.
- ``flowctl.text.display_width`` counts as rich's ``cell_len`` does.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from clirun import invoke
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from flowctl.cli import output
from flowctl.cli.output import Cell, Table
from flowctl.text import display_width, sanitize

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
START = "2026-11-23T09:00:00Z"
LATER = "2026-11-26T09:00:00Z"  # the key account's approval is overdue by then
KEY = "key-account-filing-approval"
ESC = "\x1b["

LISTINGS = [
    ("inbox", "carol"),
    ("list", "grace"),
    ("overdue", "grace"),
    ("task", "grace"),
    ("notifications", "carol"),
]


def _args(command: str) -> list[str]:
    return ["task", "list"] if command == "task" else [command]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """A store with a key account waiting (overdue) for carol, a lost customer at a
    stage with tasks, and notifications."""
    db = str(tmp_path_factory.mktemp("output") / "flowctl.db")
    env: dict[str, str | None] = {
        "FLOWCTL_DB": db, "FLOWCTL_PROCESSES": PROCESSES, "FLOWCTL_NOW": START,
        "FLOWCTL_ORG": None, "FLOWCTL_DEBUG": None, "NO_COLOR": None,
        "FLOWCTL_NOTIFY_COMMAND": None,
    }
    steps = [
        ("alice", ["start", KEY, "--set", "owner=alice"]),
        ("alice", ["advance", f"{KEY}-1", "-r", "done", "--set", "level=key"]),
        ("carol", ["start", "lost-customer-recovery", "--set", "owner=carol"]),
        ("carol", ["advance", "lost-customer-recovery-1", "-r", "reached",
                   "--set", "customer=上海百货"]),
        ("carol", ["advance", "lost-customer-recovery-1", "-r", "done",
                   "--set", "reason=price"]),
    ]
    for user, args in steps:
        result = invoke(args, env={**env, "FLOWCTL_USER": user})
        assert result.exit_code == 0, result.output
    env["FLOWCTL_NOW"] = LATER
    assert invoke(["tick"], env=env).exit_code == 0
    return env


def _run(store: dict[str, str | None], command: str, user: str, *extra: str,
         env: dict[str, str | None] | None = None) -> tuple[str, str]:
    result = invoke([*extra, *_args(command)], env={**store, "FLOWCTL_USER": user, **(env or {})})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout, result.stderr


# ------------------------------------------------------------------ piped


@pytest.mark.parametrize(("command", "user"), LISTINGS)
def test_piped_listings_are_plain_text(store: dict[str, str | None], command: str,
                                       user: str) -> None:
    out, err = _run(store, command, user)
    assert err == ""
    assert out.count("\n") >= 2  # a header and at least one row
    assert "\x1b" not in out
    assert "─" not in out  # no rule under the header: that is the terminal's table


def test_piped_table_columns_line_up_in_display_columns(store: dict[str, str | None]) -> None:
    out, _ = _run(store, "inbox", "carol")
    header, row = out.splitlines()[:2]
    assert "大客户备案审批流程" in row
    start = header.index("PROCESS")
    assert display_width(row[: row.index("大客户")]) == start
    assert header.split() == ["INSTANCE", "STAGE", "STATE", "DUE", "PROCESS"]


def test_piped_listing_imports_no_rich(store: dict[str, str | None]) -> None:
    probe = (
        "import sys\n"
        "from flowctl.cli.app import main\n"
        "try:\n"
        "    main(['list'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')),"
        " file=sys.stderr)\n"
    )
    env = {k: v for k, v in {**os.environ, **store, "FLOWCTL_USER": "grace"}.items()
           if v is not None}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=True)
    assert "key-account-filing-approval-1" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_json_output_is_the_same_on_a_terminal(store: dict[str, str | None],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**store, "FLOWCTL_USER": "grace"}
    piped = invoke(["list", "--json"], env=env).stdout
    monkeypatch.setattr(output, "is_terminal", lambda stream: True)
    assert invoke(["list", "--json"], env=env).stdout == piped
    assert [v["id"] for v in json.loads(piped)] == ["lost-customer-recovery-1", f"{KEY}-1"]


# --------------------------------------------------------------- terminal


def _terminal(monkeypatch: pytest.MonkeyPatch, width: int = 100) -> None:
    monkeypatch.setattr(output, "is_terminal", lambda stream: True)
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.mark.parametrize(("command", "user"), LISTINGS)
def test_a_terminal_gets_a_coloured_table(store: dict[str, str | None], command: str,
                                          user: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _terminal(monkeypatch)
    out, _ = _run(store, command, user, env={"COLUMNS": "100", "TERM": "xterm-256color"})
    assert ESC in out  # the bold header, at least
    assert "─" in out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert all(cell_len(line) <= 100 for line in plain.splitlines())


@pytest.mark.parametrize(("command", "user"), LISTINGS)
@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
def test_no_color_means_no_escape_codes_even_on_a_terminal(
    store: dict[str, str | None], command: str, user: str, how: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _terminal(monkeypatch)
    monkeypatch.setattr(output, "_color_disabled", False)  # undone after the test
    env = {"COLUMNS": "100", "TERM": "xterm-256color"}
    if how == "NO_COLOR":
        out, _ = _run(store, command, user, env={**env, "NO_COLOR": "1"})
    else:
        out, _ = _run(store, command, user, "--no-color", env=env)
    assert "─" in out  # still the terminal's table
    assert "\x1b" not in out


def test_lint_colour_obeys_no_color_option(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n", encoding="utf-8")
    env: dict[str, str | None] = {"NO_COLOR": None}
    monkeypatch.setattr(output, "_color_disabled", False)  # undone after the test
    assert ESC in invoke(["lint", "--no-cache", "--color", "always", str(bad)], env=env).stdout
    result = invoke(["--no-color", "lint", "--no-cache", "--color", "always", str(bad)],
                    env=env)
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout
    output._color_disabled = False  # --no-color holds for the process; these are new runs
    _terminal(monkeypatch)
    assert ESC in invoke(["lint", "--no-cache", str(bad)], env=env).stdout
    assert "\x1b" not in invoke(["lint", "--no-cache", str(bad)], env={"NO_COLOR": "1"}).stdout


CJK_TABLE = Table(
    ["INSTANCE", "STAGE", "DUE", "PROCESS", "STATE"],
    [
        ["key-account-filing-approval-1", "level-approval", Cell("2026-11-24T09:00:00Z OVERDUE",
         "bold red", "2026-11-24 09:00:00Z OVERDUE"),
         "大客户备案审批流程 (Key Account Filing Approval)", "not started"],
        ["lost-customer-recovery-12", "call-customer", "-",
         "Возврат потерянного клиента (Lost customer recovery)", "in progress"],
        ["goods-delivery-3", "承認待ち", "2026-12-01T12:00:00Z", "商品配送😀 ✔️ 1️⃣ e\u0301", "new"],
    ],
    prose=["PROCESS"],
)


def _render(table: Table, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    with console.capture() as captured:
        console.print(output.terminal_table(table, width))
    return captured.get().splitlines()


def _gaps(line: str) -> set[int]:
    """The terminal columns (as rich counts them) where two spaces begin."""
    return {cell_len(line[:i]) for i in range(len(line)) if line[i:i + 2] == "  "}


@pytest.mark.parametrize("width", [60, 80, 100, 140])
def test_a_cjk_table_fits_the_width_and_its_columns_align(width: int) -> None:
    lines = _render(CJK_TABLE, width)
    assert all(cell_len(line) <= width for line in lines)
    prose = [h in CJK_TABLE.prose for h in CJK_TABLE.headers]
    grid = [list(CJK_TABLE.headers),
            *([output._terminal_text(c) for c in row] for row in CJK_TABLE.rows)]
    widths = output.column_widths(grid, prose, width - 2 * (len(prose) - 1))
    starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]
    for line in lines:
        if set(line.strip()) == {"─"}:
            continue
        for start in starts[1:]:  # the two cells before each column are its gap
            assert start - 2 in _gaps(line), (line, start)
    text = "".join(lines)
    for piece in ("大客", "Возврат", "😀", "OVERDUE", "new"):
        assert piece in text


def test_terminal_text_of_a_cell_cannot_drive_the_terminal() -> None:
    table = Table(["A", "B"], [["\x1b[2Jboom\tx", "\u202eevil"]])
    assert output.table_lines(table)[1] == "\\x1b[2Jboom x  \\u202eevil"
    lines = _render(table, 40)
    assert "\x1b" not in "".join(lines)
    assert "\u202e" not in "".join(lines)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.text(alphabet=st.sampled_from(list("ab -Zé大客户Клиент😀\u0301")),
                         max_size=40), min_size=3, max_size=3),
        min_size=1, max_size=4),
    width=st.integers(min_value=12, max_value=120),
)
def test_terminal_tables_never_overflow(rows: list[list[str]], width: int) -> None:
    table = Table(["ONE", "TWO", "THREE"], rows, prose=["TWO"])
    assert all(cell_len(line) <= width for line in _render(table, width))


def test_wrap_cell_breaks_between_words_then_after_hyphens_then_anywhere() -> None:
    assert output.wrap_cell("2026-11-24 09:00:00Z OVERDUE", 20) == [
        "2026-11-24 09:00:00Z", "OVERDUE"]
    assert output.wrap_cell("key-account-filing-approval-1", 18) == [
        "key-account-", "filing-approval-1"]
    assert output.wrap_cell("2026-11-24", 6) == ["2026-1", "1-24"]
    assert output.wrap_cell("大客户备案", 5) == ["大客", "户备", "案"]
    assert output.wrap_cell("", 5) == [""]


def test_plain_tables_are_what_scripts_read() -> None:
    assert output.table_lines(CJK_TABLE)[0].split() == list(CJK_TABLE.headers)
    lines = output.table_lines(Table(["A", "LONG"], [["大客", "x"], ["ab", "y"]]))
    assert lines == ["A     LONG", "大客  x", "ab    y"]


# --------------------------------------------------------------- progress


def test_progress_prints_nothing_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with output.progress(10_000, "drawing") as bar:
        for _ in range(10_000):
            bar.advance()
    with output.progress(None, "exporting") as bar:
        bar.advance(3)
    assert capsys.readouterr() == ("", "")


def test_progress_on_a_terminal_goes_to_stderr_and_is_erased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(output, "is_terminal", lambda stream: stream is err)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with output.progress(output.SHOW_AT_ONCE, "drawing") as bar:
        for _ in range(output.SHOW_AT_ONCE):
            bar.advance()
        time.sleep(0.15)
    assert out.getvalue() == ""
    assert "drawing" in err.getvalue()


def test_progress_waits_before_showing_short_work(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(output, "is_terminal", lambda stream: stream is err)
    monkeypatch.setattr(sys, "stderr", err)
    with output.progress(3, "quick") as bar:
        bar.advance(3)
    assert err.getvalue() == ""


def test_commands_print_no_progress_when_piped(store: dict[str, str | None]) -> None:
    result = invoke(["journal", "--format", "json"], env={**store, "FLOWCTL_USER": "grace"})
    assert result.exit_code == 0
    assert result.stderr == ""
    assert invoke(["tick"], env=store).stderr == ""


def test_tick_reports_each_timer_to_its_progress_callback(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from flowctl.api import timers

    env: dict[str, str | None] = {"FLOWCTL_DB": str(tmp_path / "t.db"),
                                  "FLOWCTL_PROCESSES": PROCESSES, "FLOWCTL_NOW": START}
    for args in (["start", KEY, "--set", "owner=alice", "--as", "alice"],
                 ["advance", f"{KEY}-1", "-r", "done", "--set", "level=key", "--as", "alice"]):
        assert invoke(args, env=env).exit_code == 0
    calls: list[int] = []
    report = timers.tick(now=datetime(2026, 12, 20, tzinfo=UTC), progress=calls.append,
                         db=str(tmp_path / "t.db"), processes_dir=PROCESSES)
    assert report.fired
    assert calls == [1] * len(report.fired)


# ------------------------------------------------------------ one width


SAMPLES = [
    "", "ascii", "Клиент", "Возврат потерянного клиента", "大客户备案审批流程",
    "承認待ち", "한국어", "ｆｕｌｌｗｉｄｔｈ", "e\u0301", "a\u200bb", "soft\xadhyphen",
    "😀", "❤️", "👨\u200d👩\u200d👧", "1️⃣", "🇩🇪", "☕ coffee", "⚠️ warning", "ℹ️",
    "👍🏽", "ﾊﾝｶｸ", "Zürich 東京 Москва", "\u0915\u093f", "tab\there", "bell\x07",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_display_width_agrees_with_rich(text: str) -> None:
    assert display_width(text) == cell_len(text)


def test_display_width_agrees_with_rich_on_whole_blocks() -> None:
    blocks = [(0x20, 0x250), (0x300, 0x370), (0x400, 0x530), (0x900, 0x980),
              (0x1100, 0x1200), (0x2000, 0x2070), (0x2E80, 0x3100), (0x3130, 0x3190),
              (0x4E00, 0x4F00), (0xAC00, 0xAD00), (0xFE00, 0xFE70), (0xFF00, 0xFFF0),
              (0x1F300, 0x1F700), (0x1F900, 0x1FA00)]
    wrong = [hex(c) for lo, hi in blocks for c in range(lo, hi)
             if unicodedata.category(chr(c)) != "Cn"  # unassigned (in this Python)
             and display_width(chr(c)) != cell_len(chr(c))]
    assert wrong == []


def test_sanitize_escapes_controls_and_bidi() -> None:
    assert sanitize("a\x1b[31mb\u202ec\nd") == "a\\x1b[31mb\\u202ec\nd"
    assert sanitize("a\nb", keep="") == "a\\x0ab"


def test_only_the_output_module_imports_rich() -> None:
    probe = (
        "import sys\n"
        "import flowctl.lint.reporters, flowctl.diagram.text, flowctl.cli.views\n"
        "import flowctl.cli.reading, flowctl.cli.timers, flowctl.cli.render, flowctl.cli.lint\n"
        "print([m for m in sys.modules if m == 'rich' or m.startswith('rich.')])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
    sources = [p for p in (ROOT / "flowctl").rglob("*.py")
               if re.search(r"^\s*(from|import) rich\b", p.read_text(encoding="utf-8"), re.M)]
    assert [p.relative_to(ROOT).as_posix() for p in sources] == ["flowctl/cli/output.py"]
