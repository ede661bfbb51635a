"""The fast command-line path calls each command exactly as typer would, or leaves it to typer.

For every command line the fast path accepts, typer accepts it too and calls
the command's function with the same values (typer's call is recorded by
swapping each command function for a recorder with the same signature). The
command lines typer must handle (help, usage errors) are refused by the fast
path. ``flowctl/cli/spec_data.py`` must be what the typer app generates.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowctl.cli import fast
from flowctl.cli.spec_data import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted(COMMANDS)


def test_the_spec_is_what_the_typer_app_generates() -> None:
    current = Path(fast.spec_file()).read_text(encoding="utf-8")
    assert current == fast.render_spec(fast.build_spec(), fast.build_root_help()), (
        "run `python -m flowctl.cli.fast`")


def test_every_command_but_groups_with_options_has_a_fast_path() -> None:
    assert "notifications" not in NAMES  # its group has options: typer parses it
    assert {"advance", "start", "show", "inbox", "list", "journal", "lint", "render",
            "task done", "task list", "tick"} <= set(NAMES)


# ---------------------------------------------------------------- typer's call, recorded


class Recorder:
    """The typer app with every command function replaced by one that records its call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.app: Any = None

    def build(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from flowctl.cli.app import _build_app

        for name, spec in COMMANDS.items():
            module = importlib.import_module(spec["module"])
            monkeypatch.setattr(module, spec["function"],
                                self._recorder(name, getattr(module, spec["function"])))
        self.app = _build_app()

    def _recorder(self, name: str, original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def record(**kwargs: Any) -> None:
            self.calls.append((name, kwargs))

        return record

    def typer_call(self, command: str, argv: list[str]) -> dict[str, Any] | None:
        """The values typer calls ``command`` with, or None when typer refuses the line."""
        self.calls.clear()
        result = CliRunner().invoke(self.app, [*command.split(), *argv], prog_name="flowctl")
        if result.exit_code != 0 or not self.calls:
            return None
        assert [c[0] for c in self.calls] == [command]
        return self.calls[0][1]


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    with pytest.MonkeyPatch.context() as mp:
        rec = Recorder()
        rec.build(mp)
        yield rec


def fast_call(command: str, argv: list[str]) -> dict[str, Any] | None:
    """The values the fast path calls ``command`` with (defaults filled in), or None."""
    spec = COMMANDS[command]
    try:
        given_values = fast.parse(fast.params(spec), argv)
    except fast._Refuse:
        return None
    module = importlib.import_module(spec["module"])
    function = inspect.unwrap(getattr(module, spec["function"]))
    defaults = {n: p.default for n, p in inspect.signature(function).parameters.items()}
    return {**defaults, **given_values}


# ---------------------------------------------------------------- sample command lines


def _value(p: fast.ParamSpec, variant: int) -> str:
    if p["type"] == "choice":
        choice = p["choices"][variant % len(p["choices"])]
        return choice.upper() if variant % 2 and not p["case_sensitive"] else choice
    return {"int": ["3", "0", "12"], "float": ["2.5", "7", ".5"]}.get(
        p["type"], ["x", "two words", "ünïcode=1"])[variant % 3]


def samples(command: str) -> Iterator[list[str]]:
    """Valid command lines: arguments, then every option, in a few spellings and orders."""
    params = fast.params(COMMANDS[command])
    for variant in range(3):
        args = [_value(p, variant) for p in params if not p["opts"] and p["required"]]
        needed = [x for p in params if p["opts"] and p["required"]
                  for x in (p["opts"][0], _value(p, variant))]
        opts: list[str] = []
        for p in params:
            if not p["opts"]:
                continue
            name = p["opts"][variant % len(p["opts"])]
            if p["flag"]:
                opts.append(name)
            elif variant == 1 and name.startswith("--"):
                opts.append(f"{name}={_value(p, variant)}")
            else:
                opts += [name, _value(p, variant)]
                if p["multiple"]:
                    opts += [name, _value(p, variant + 1)]
        yield [*args, *needed]
        yield [*args, *opts]
        yield [*opts, *args]
        if args:
            yield [*opts, "--", *args]


CASES = [(c, argv) for c in NAMES for argv in samples(c)]


@pytest.mark.parametrize(("command", "argv"), CASES,
                         ids=[f"{c}:{' '.join(a)}" for c, a in CASES])
def test_fast_path_calls_the_command_as_typer_does(recorder: Recorder, command: str,
                                                   argv: list[str]) -> None:
    ours = fast_call(command, argv)
    assert ours is not None, "a plain valid line should take the fast path"
    assert ours == recorder.typer_call(command, argv)


REFUSED = [
    ("advance", ["K-1"]),  # --result is required
    ("advance", ["K-1", "-r"]),  # no value
    ("advance", ["K-1", "-r", "done", "-r", "approve"]),  # given twice
    ("advance", ["K-1", "-r", "--set"]),  # a value that is an option
    ("advance", ["K-1", "-rdone"]),  # short option run together with its value
    ("advance", ["K-1", "-r", "done", "--bogus"]),
    ("advance", ["K-1", "-r", "done", "--expect-version", "three"]),
    ("advance", ["K-1", "-r", "done", "--expect-version", "-1"]),
    ("advance", ["K-1", "K-2", "-r", "done"]),  # an extra argument
    ("show", ["K-1", "--help"]),
    ("show", ["-h"]),
    ("show", ["K-1", "--json=yes"]),
    ("list", ["--limit", "1e3"]),
    ("journal", ["--format", "xml"]),
    ("render", ["p", "--timeout", "0.05"]),  # below its minimum
]


@pytest.mark.parametrize(("command", "argv"), REFUSED)
def test_lines_for_typer_are_refused_by_the_fast_path(command: str, argv: list[str]) -> None:
    assert fast_call(command, argv) is None


# ---------------------------------------------------------------- any line at all


TOKENS = st.sampled_from([
    "--", "-", "-h", "--help", "x", "K-1", "3", "-1", "0.5", "json", "JSON", "csv", "svg",
    "--as", "--db", "--set", "a=b", "-r", "--result", "--json", "--limit", "-n", "--format",
    "-f", "--status", "--strict", "--no-cache", "--all", "--timeout", "--expect-version",
    "--comment", "--mine", "--done", "--now", "2026-11-23", "--output", "-o", "--process",
    "--json=1", "--limit=2", "--as=carol", "--bogus",
])


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(NAMES), argv=st.lists(TOKENS, max_size=7))
def test_any_line_the_fast_path_takes_typer_takes_the_same_way(
    recorder: Recorder, command: str, argv: list[str]
) -> None:
    ours = fast_call(command, argv)
    if ours is not None:
        assert ours == recorder.typer_call(command, argv)


# ---------------------------------------------------------------- from a shell


PROBE = """\
import json, sys
from flowctl.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.flush()
print(json.dumps({"typer": "typer" in sys.modules, "code": code}), file=sys.stderr)
"""


def _probe(*args: str, cwd: Path) -> tuple[str, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, cwd=cwd, check=False)
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def test_operator_commands_run_without_importing_typer(tmp_path: Path) -> None:
    (tmp_path / "processes").symlink_to(ROOT / "processes")
    out, info = _probe("start", "key-account-filing-approval", "--as", "alice",
                       "--set", "owner=alice", "--db", "f.db", cwd=tmp_path)
    assert info == {"typer": False, "code": 0}
    assert out.startswith("key-account-filing-approval-1: started key-account-filing-approval")
    out, info = _probe("show", "key-account-filing-approval-1", "--as", "alice", "--db", "f.db",
                       cwd=tmp_path)
    assert info == {"typer": False, "code": 0}
    assert out.splitlines()[0] == "key-account-filing-approval-1"


def test_a_refusal_through_the_fast_path_keeps_its_message_and_code(tmp_path: Path) -> None:
    (tmp_path / "processes").symlink_to(ROOT / "processes")
    done = subprocess.run(
        [sys.executable, "-m", "flowctl", "show", "nope-1", "--as", "alice", "--db", "f.db"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("flowctl: error: ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("columns", ["80", "120", "", "60"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_the_top_level_help_is_typers_to_the_byte(tmp_path: Path, flag: str,
                                                   columns: str) -> None:
    env = {**os.environ, "COLUMNS": columns}
    typer_help = subprocess.run(
        [sys.executable, "-c", "from flowctl.cli.app import _build_app; "
         f"_build_app()(args=[{flag!r}], prog_name='flowctl')"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    ours = subprocess.run([sys.executable, "-c", PROBE, flag], capture_output=True, text=True,
                          env=env, cwd=tmp_path, check=False)
    assert typer_help.returncode == 0
    assert ours.stdout == typer_help.stdout
    assert json.loads(ours.stderr.splitlines()[-1]) == {"typer": columns == "60", "code": 0}


def test_usage_errors_and_help_still_come_from_typer(tmp_path: Path) -> None:
    out, info = _probe("advance", "K-1", cwd=tmp_path)
    assert info == {"typer": True, "code": 2}
    out, info = _probe("show", "--help", cwd=tmp_path)
    assert info == {"typer": True, "code": 0}
    assert out.startswith("Usage: flowctl show [OPTIONS]")


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "def boom(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "import flowctl.api.runtime as rt\n"
        "rt.show = boom\n"
        "from flowctl.cli.app import main\n"
        "main(['show', 'K-1'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, check=False)
    assert (done.returncode, done.stderr, done.stdout) == (130, "flowctl: interrupted\n", "")
