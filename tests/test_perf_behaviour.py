"""What flowctl's speed relies on, as behaviour (no timings here; bench/ has those).

- ``--version`` and ``--help`` import no parser, schema, database, drawing
  or rich library; ``flowctl <command>`` imports only that command's module.
- Linting a valid file never imports jsonschema (jsonschema-rs confirms it).
- The benchmark inputs are what the issue asks for and lint clean.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowctl.cli import app as cli_app

ROOT = Path(__file__).resolve().parent.parent


def _bench_module(name: str) -> Any:
    """``bench/<name>.py`` (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _bench_module("generate")

HEAVY = ("ruamel", "jsonschema", "jsonschema_rs", "sqlite3", "sqlite_utils", "graphviz",
         "pydantic", "flowctl.definition", "flowctl.lint", "flowctl.engine", "flowctl.store",
         "flowctl.diagram", "flowctl.api")

PROBE = """\
import json, sys
from flowctl.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_after(*args: str, cwd: Path = ROOT) -> set[str]:
    """Modules loaded by the time ``flowctl <args>`` is done, in a fresh interpreter."""
    env = {**os.environ, "FLOWCTL_CACHE_DIR": str(cwd / ".probe-cache")}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          cwd=cwd, env=env, check=False)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``names`` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["-h"]])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    assert loaded(modules_after(*args), HEAVY) == []


def test_a_command_imports_only_its_own_module() -> None:
    mods = modules_after("schema", "org")
    cli = sorted(m for m in mods if m.startswith("flowctl.cli."))
    assert cli == ["flowctl.cli.app", "flowctl.cli.output", "flowctl.cli.schema"]


def test_linting_a_valid_file_uses_no_jsonschema_and_no_runtime_libraries(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.yaml").write_text(generate.generate_process(1), encoding="utf-8")
    (tmp_path / "org.yaml").write_text(generate.generate_org(), encoding="utf-8")
    mods = modules_after("lint", "--no-cache", "p.yaml", cwd=tmp_path)
    assert "ruamel.yaml" in mods  # it did lint
    assert loaded(mods, ("jsonschema", "sqlite3", "sqlite_utils", "graphviz", "rich",
                         "flowctl.diagram", "flowctl.store.sqlite")) == []


def test_the_command_table_matches_what_the_modules_register() -> None:
    """`flowctl --help` lists commands from the table without importing them: each
    summary is the command's own first help line, and no registered command is missing."""
    import typer

    registered: dict[str, str] = {}
    for module in sorted({entry.module for entry in cli_app.COMMANDS.values()}):
        group = cli_app.module_commands(module)
        ctx = typer.Context(group)
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert cmd is not None
            registered[name] = " ".join((cmd.help or "").strip().split("\n\n")[0].split())
            assert cli_app.COMMANDS[name].module == module
    assert set(registered) == set(cli_app.COMMANDS)
    assert {n: e.summary for n, e in cli_app.COMMANDS.items()} == registered


# ---------------------------------------------------------------- benchmark inputs


def test_generated_definitions_are_realistic_and_lint_clean(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator
    from ruamel.yaml import YAML

    from flowctl.api import lint_paths

    paths = generate.write_set(str(tmp_path), 12)
    result = lint_paths([str(tmp_path)], cache=False)
    assert result.diagnostics == []
    schema = json.loads((ROOT / "schemas" / "process.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    lines = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        data = YAML(typ="safe").load(text)
        assert list(validator.iter_errors(data)) == [], path
        kinds = [s["kind"] for s in data["stages"]]
        assert 25 <= len(kinds) <= 35
        assert {"task", "approval", "decision", "end"} <= set(kinds)
        assert len(data["phases"]) >= 4
        assert any("sla" in s for s in data["stages"])
        assert any(b["when"] for s in data["stages"] for b in s.get("branches", []))
        lines.append(text.count("\n"))
    assert 400 <= sum(lines) / len(lines) <= 700
    assert generate.generate_process(5) == generate.generate_process(5)  # reproducible
