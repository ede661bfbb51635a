"""Docs that cannot rot: generated pages are current, and every command is
in the README."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def test_rules_page_is_current() -> None:
    gen = runpy.run_path(str(ROOT / "scripts" / "gen_rules_doc.py"), run_name="gen")
    current = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert current == gen["render"](), "run `python scripts/gen_rules_doc.py`"


def test_every_rule_is_documented_with_an_anchor() -> None:
    from flowctl.lint.codes import RULES

    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for code in RULES:
        assert f'<a id="{code.lower()}"></a>' in page


def _commands() -> list[tuple[str, str]]:
    """(command path, first line of its help) for every command, depth first."""
    import typer

    from flowctl.cli.app import command

    root = command()
    out: list[tuple[str, str]] = []

    def walk(cmd: Any, path: str) -> None:
        # typer may bring its own click, so groups are recognised by shape
        if path:
            first_paragraph = (cmd.help or "").strip().split("\n\n")[0]
            out.append((path, " ".join(first_paragraph.split())))
        if hasattr(cmd, "list_commands"):
            ctx = typer.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), f"{path} {name}".strip())

    walk(root, "")
    return out


def test_every_command_is_in_the_readme_with_its_summary() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [
        f"| `flowctl {path}` | {summary} |"
        for path, summary in _commands()
        if f"| `flowctl {path}` | {summary} |" not in readme
    ]
    assert missing == [], "add these rows to the README's command table:\n" + "\n".join(missing)


def test_api_exports_resolve_and_match_all() -> None:
    import flowctl.api as api

    homes = {name for names in api.HOMES.values() for name in names}
    assert sorted(homes) == api.__all__
    for name in api.__all__:
        assert getattr(api, name) is not None


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: Any,
                                    capsys: Any) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    db = str(tmp_path / "demo.db")
    exec(compile(block.replace('"demo.db"', repr(db)), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "0"
    assert "change-owner" in out
    assert any(line.endswith("carol result level-approval approve") for line in out)


def test_readme_lint_sample_is_exactly_what_lint_prints(monkeypatch: Any) -> None:
    from clirun import invoke

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- lint-sample -->", 1)[1].split("```console\n", 1)[1]
    block = block.split("```", 1)[0]
    command, _, printed = block.partition("\n")
    assert command.startswith("$ flowctl ")
    monkeypatch.chdir(ROOT)
    result = invoke(command.removeprefix("$ flowctl ").split(), env={"FLOWCTL_ORG": None})
    assert result.stdout == printed


def test_readme_diff_sample_is_exactly_what_diff_prints(tmp_path: Path, monkeypatch: Any) -> None:
    """The pull-request comment in the README is the real output of its command
    (run in a copy of the files it names, so no store of this checkout counts)."""
    import shutil

    from clirun import invoke

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head, rest = readme.split("<!-- diff-sample: flowctl ", 1)[1].split(" -->\n", 1)
    shown = rest.split("<!-- /diff-sample -->", 1)[0]
    args = head.split()
    for name in ("processes/contract-approval.yaml", "processes/org.yaml",
                 "docs/examples/contract-approval-v2.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    result = invoke(args, env={"FLOWCTL_ORG": None, "FLOWCTL_DB": None,
                               "FLOWCTL_PROCESSES": None})
    assert result.exit_code == 0, result.output
    assert result.stdout == shown
    assert "⚠️ **weakens control**" in shown
