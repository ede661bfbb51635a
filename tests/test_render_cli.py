"""``flowctl render`` end to end: formats, files, --all, refusals, Graphviz trouble."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
GOLDEN = Path(__file__).parent / "golden"
IDS = [
    "contract-approval",
    "deal-blueprint",
    "goods-delivery",
    "key-account-filing-approval",
    "lost-customer-recovery",
]

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz `dot` is not installed (sh scripts/install-system-deps.sh)",
)


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return invoke(["render", *args], env=env)


def golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def test_mermaid_to_stdout_by_process_id() -> None:
    result = run(
        "key-account-filing-approval", "--format", "mermaid", "--processes", str(PROCESSES)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == golden("key-account-filing-approval.mmd")
    assert result.stderr == ""


def test_dot_to_stdout_by_file_path() -> None:
    result = run(str(PROCESSES / "goods-delivery.yaml"), "-f", "dot")
    assert result.exit_code == 0, result.output
    assert result.stdout == golden("goods-delivery.dot")


def test_default_processes_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run("contract-approval", "-f", "dot")
    assert result.exit_code == 0, result.output
    assert result.stdout == golden("contract-approval.dot")


@pytest.mark.parametrize(
    ("suffix", "golden_suffix"), [(".mmd", ".mmd"), (".dot", ".dot"), (".gv", ".dot")]
)
def test_format_from_output_suffix(tmp_path: Path, suffix: str, golden_suffix: str) -> None:
    out = tmp_path / "sub" / f"diagram{suffix}"  # missing folders are created
    result = run("lost-customer-recovery", "-o", str(out), "--processes", str(PROCESSES))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    assert out.read_bytes() == golden(f"lost-customer-recovery{golden_suffix}").encode("utf-8")


def test_format_option_wins_over_suffix(tmp_path: Path) -> None:
    out = tmp_path / "diagram.txt"
    result = run("goods-delivery", "-f", "mermaid", "-o", str(out), "--processes", str(PROCESSES))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == golden("goods-delivery.mmd")


@needs_dot
def test_svg_is_the_default_and_goes_to_stdout() -> None:
    result = run("goods-delivery", "--processes", str(PROCESSES))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('<?xml version="1.0" encoding="UTF-8" standalone="no"?>')
    assert "Доставка товара (Goods delivery)" in result.stdout


@needs_dot
def test_png_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "key.png"
    result = run("key-account-filing-approval", "-o", str(out), "--processes", str(PROCESSES))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_output_is_refused() -> None:
    result = run("goods-delivery", "-f", "png", "--processes", str(PROCESSES))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "flowctl: error: png is binary and is not written to the terminal\n"
        "flowctl: hint: pass -o FILE.png\n"
    )


def test_unknown_suffix_is_refused() -> None:
    result = run("goods-delivery", "-o", "diagram.txt", "--processes", str(PROCESSES))
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: cannot tell the diagram format from 'diagram.txt' (suffix '.txt'); "
        "known suffixes: .dot, .gv, .mermaid, .mmd, .png, .svg\n"
        "flowctl: hint: pass --format svg|png|dot|mermaid\n"
    )


def test_unknown_format_is_refused() -> None:
    result = run("goods-delivery", "-f", "pdf")
    assert result.exit_code == 2
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert "'pdf' is not one of 'svg', 'png', 'dot', 'mermaid'" in flat


def test_unknown_process_is_refused() -> None:
    result = run("nope", "-f", "dot", "--processes", str(PROCESSES))
    assert result.exit_code == 2
    assert result.stderr == (
        f"flowctl: error: no process 'nope' in {PROCESSES}/ (from --processes) "
        f"(known: {', '.join(IDS)})\n"
        "flowctl: hint: name a process id or a YAML file\n"
    )


def test_nothing_to_draw_is_refused() -> None:
    result = run()
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: name the process to draw, or pass --all\n"
        "flowctl: hint: flowctl render PROCESS [-o FILE]  or  flowctl render --all -o FOLDER\n"
    )


def test_invalid_definition_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: process\nid: bad\nname: Bad\nstages:\n"
        "  - {id: a, kind: task, start: true, results: {done: nowhere}}\n",
        encoding="utf-8",
    )
    result = run(str(bad), "-f", "dot")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"flowctl: error: {bad} is not a valid process definition: ")
    assert result.stderr.endswith("flowctl: hint: run `flowctl lint` on it to see every problem\n")


def test_all_writes_one_file_per_process(tmp_path: Path) -> None:
    out = tmp_path / "diagrams"
    result = run("--all", "-o", str(out), "-f", "mermaid", "--processes", str(PROCESSES))
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(f"wrote {out / (i + '.mmd')}\n" for i in IDS)
    assert sorted(p.name for p in out.iterdir()) == [f"{i}.mmd" for i in IDS]
    for i in IDS:
        assert (out / f"{i}.mmd").read_text(encoding="utf-8") == golden(f"{i}.mmd")


@needs_dot
def test_all_defaults_to_svg(tmp_path: Path) -> None:
    result = run("--all", "-o", str(tmp_path), "--processes", str(PROCESSES))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}.svg" for i in IDS]


def test_all_draws_the_valid_ones_and_reports_the_rest(tmp_path: Path) -> None:
    procs = tmp_path / "procs"
    procs.mkdir()
    shutil.copy(PROCESSES / "goods-delivery.yaml", procs / "a.yaml")
    shutil.copy(PROCESSES / "org.yaml", procs / "org.yaml")
    (procs / "b.yaml").write_text(
        "kind: process\nid: broken\nname: Broken\nstages:\n"
        "  - {id: a, kind: task, start: true, results: {done: nowhere}}\n",
        encoding="utf-8",
    )
    shutil.copy(PROCESSES / "goods-delivery.yaml", procs / "c.yaml")  # the same id again
    out = tmp_path / "out"
    result = run("--all", "-o", str(out), "-f", "dot", "--processes", str(procs))
    assert result.exit_code == 1
    assert result.stdout == f"wrote {out / 'goods-delivery.dot'}\n"
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"flowctl: error: skipped {procs / 'b.yaml'} is not a valid")
    assert errors[1] == (
        f"flowctl: error: skipped {procs / 'c.yaml'}: process id 'goods-delivery' was "
        f"already drawn from {procs / 'a.yaml'}"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["goods-delivery", "--all", "-o", "x"],
            "--all draws every process; do not also name one ('goods-delivery')",
        ),
        (["--all"], "--all needs -o FOLDER to write the diagrams into"),
        (["--all", "-o", "out", "--processes", "no-such-dir"], "no processes folder no-such-dir/"),
    ],
)
def test_all_refusals(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"flowctl: error: {message}"


def test_all_into_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file.svg"
    target.write_text("x", encoding="utf-8")
    result = run("--all", "-o", str(target), "--processes", str(PROCESSES))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"flowctl: error: --all writes into a folder, and {target} is a file"
    )


def test_missing_graphviz_is_one_line_and_text_formats_still_work(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}  # an empty folder: no `dot`
    for fmt in ("svg", "png"):
        result = run("goods-delivery", "-f", fmt, "-o", str(tmp_path / f"x.{fmt}"),
                     "--processes", str(PROCESSES), env=env)  # fmt: skip
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"flowctl: error: cannot draw {fmt}: Graphviz's `dot` command is not installed; "
            "install Graphviz with `sh scripts/install-system-deps.sh` (Debian/Ubuntu, from a "
            "flowctl checkout) or your package manager's `graphviz` package, or use --format dot "
            "or --format mermaid, which need no Graphviz\n"
        )
    for fmt, suffix in (("dot", ".dot"), ("mermaid", ".mmd")):
        result = run("goods-delivery", "-f", fmt, "--processes", str(PROCESSES), env=env)
        assert result.exit_code == 0
        assert result.stdout == golden(f"goods-delivery{suffix}")


@needs_dot
def test_slow_graphviz_fallback_is_told_on_stderr(tmp_path: Path) -> None:
    real_dot, sleep = shutil.which("dot"), shutil.which("sleep")
    fake = tmp_path / "dot"
    fake.write_text(
        f'#!/bin/sh\ncase "$*" in *-Gnslimit=1*) exec {real_dot} "$@";; esac\nexec {sleep} 30\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    out = tmp_path / "g.svg"
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    result = run("goods-delivery", "-o", str(out), "--timeout", "0.5",
                 "--processes", str(PROCESSES), env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    assert result.stderr == (
        "flowctl: note: goods-delivery: dot took longer than 0.5 s, so the diagram was drawn "
        "again with straight edges and a quicker layout\n"
    )
    assert out.read_text(encoding="utf-8").startswith("<?xml")


@pytest.mark.skipif(shutil.which("sfdp") is None, reason="Graphviz `sfdp` is not installed")
def test_sfdp_fallback_is_told_on_stderr(tmp_path: Path) -> None:
    sleep, sfdp = shutil.which("sleep"), shutil.which("sfdp")
    for name, body in (("dot", f"exec {sleep} 30"), ("sfdp", f'exec {sfdp} "$@"')):
        fake = tmp_path / name  # a `dot` that hangs, even with the quick settings
        fake.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        fake.chmod(0o755)
    out = tmp_path / "g.svg"
    result = run("goods-delivery", "-o", str(out), "--timeout", "0.5",
                 "--processes", str(PROCESSES), env={"PATH": str(tmp_path)})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    assert result.stderr == (
        "flowctl: note: goods-delivery: dot took longer than 0.5 s, and dot with quicker "
        "settings did not finish in time, so the diagram was drawn with sfdp (no phase boxes, "
        "a looser layout)\n"
    )
    assert out.read_text(encoding="utf-8").startswith("<?xml")


def test_registered_in_the_real_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flowctl", "render", "key-account-filing-approval", "-f", "mermaid"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == golden("key-account-filing-approval.mmd")


# ------------------------------------------------------------ --instance


def _contract_at_finance_review(tmp_path: Path) -> str:
    from flowctl.api import instances as runtime

    common: dict[str, Any] = {
        "db": str(tmp_path / "f.db"),
        "processes_dir": str(PROCESSES),
        "org": str(PROCESSES / "org.yaml"),
    }
    started = runtime.start(
        "contract-approval",
        values={"customer": "Acme", "amount": "250000", "credit_score": "60",
                "term_months": "24"},
        as_user="alice", **common,
    )
    iid = started.instance.id
    runtime.advance(iid, result="submit", as_user="alice", **common)
    runtime.advance(iid, result="approve", as_user="carol", **common)
    return iid


def test_render_instance_marks_the_path_taken_and_the_current_stage(tmp_path: Path) -> None:
    from flowctl.api import instances as runtime
    from flowctl.api import load_process
    from flowctl.diagram import Highlight, render_process

    iid = _contract_at_finance_review(tmp_path)
    runtime.advance(iid, result="approve", as_user="linda", db=str(tmp_path / "f.db"),
                    processes_dir=str(PROCESSES), org=str(PROCESSES / "org.yaml"))
    result = run("--instance", iid, "--as", "carol", "--db", str(tmp_path / "f.db"),
                 "--processes", str(PROCESSES), "-f", "dot")
    assert result.exit_code == 0, result.output
    # the reviews run at the same time: finance and the countersignature are both
    # current; legal went on to the join
    expected = Highlight(
        current=None,
        visited=frozenset({"submit", "manager-review", "reviews", "finance-review",
                           "legal-review", "executive-signature", "reviews-done"}),
        taken=frozenset({("submit", "manager-review"), ("manager-review", "reviews"),
                         ("reviews", "finance-review"), ("reviews", "legal-review"),
                         ("reviews", "executive-signature"), ("legal-review", "reviews-done")}),
        active=frozenset({"finance-review", "executive-signature"}),
    )
    process = load_process(str(PROCESSES / "contract-approval.yaml"))
    assert result.stdout == render_process(process, "dot", highlight=expected)


def test_render_instance_refusals(tmp_path: Path) -> None:
    iid = _contract_at_finance_review(tmp_path)
    db = str(tmp_path / "f.db")
    unknown = run("--instance", "contract-approval-9", "--as", "carol", "--db", db,
                  "--processes", str(PROCESSES), "-f", "dot")
    assert unknown.exit_code == 2
    assert "no instance 'contract-approval-9'" in unknown.stderr
    both = run("contract-approval", "--instance", iid, "--db", db)
    assert both.exit_code == 2
    assert "do not name a process or --all" in both.stderr
    png = run("--instance", iid, "--as", "carol", "--db", db, "--processes", str(PROCESSES),
              "-f", "png")
    assert png.exit_code == 2
    assert "pass -o FILE.png" in png.stderr
