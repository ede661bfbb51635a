"""Graphviz under one deadline: which layout wins, the note, and no process left behind.

Fake Graphviz programs (small shell scripts on PATH) stand in for ``dot`` and
``sfdp``: each logs its call and process id, then gives a picture, fails,
crashes or hangs, so no test depends on how fast the real ``dot`` is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowctl.diagram import graphviz_run
from flowctl.diagram.graphviz_run import (
    GraphvizFailed,
    Layout,
    fallback_delay,
    layout,
    layout_budget,
)

ROOT = Path(__file__).resolve().parent.parent
SLEEP = shutil.which("sleep") or "/bin/sleep"
CAT = shutil.which("cat") or "/bin/cat"
QUICK = "-Gnslimit=1"  # an option only the quicker dot layout is given
SMALL = "digraph { a -> b }"
BIG = "digraph {\n" + "a -> b\n" * graphviz_run.BIG_GRAPH_EDGES + "}\n"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the fakes are POSIX shell scripts")


def picture(text: str) -> str:
    return f"{CAT} >/dev/null; printf '%s' '{text}'"


def late_picture(seconds: float, text: str) -> str:
    return f"{CAT} >/dev/null; {SLEEP} {seconds}; printf '%s' '{text}'"


def failure(code: int, message: str) -> str:
    return f"{CAT} >/dev/null; echo '{message}' >&2; exit {code}"


HANG = f"exec {SLEEP} 30"
CRASH = "kill -SEGV $$"


class Fakes:
    """Fake Graphviz programs in a folder, and the log of their calls."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "calls.log"

    def program(self, name: str, body: str, *, quick: str | None = None) -> None:
        """``name`` runs ``body``, or ``quick`` when given the quicker dot settings."""
        script = f'#!/bin/sh\necho "{name} $$ $*" >> {self.log}\n'
        if quick is not None:
            script += f'case "$*" in *{QUICK}*) {quick}; exit $?;; esac\n'
        path = self.folder / name
        path.write_text(script + body + "\n", encoding="utf-8")
        path.chmod(0o755)

    def calls(self) -> list[tuple[str, int]]:
        """(which layout, process id) of every call: "dot", "quick" or "sfdp"."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            name, pid, args = line.split(" ", 2)
            out.append(("quick" if QUICK in args else name, int(pid)))
        return out

    def pids(self) -> list[int]:
        return [pid for _, pid in self.calls()]


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))  # only the fakes: no real Graphviz
    return Fakes(folder)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_soon(pid: int, within: float = 5.0) -> bool:
    """Whether ``pid`` has stopped running within ``within`` seconds (for grandchildren)."""
    end = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_budget_keeps_time_for_start_up_and_writing() -> None:
    assert layout_budget(10.0) == 8.5
    assert layout_budget(30.0) == 28.5
    assert layout_budget(2.0) == 1.0  # never less than a second ...
    assert layout_budget(0.5) == 0.5  # ... or the whole limit when it is shorter


def test_quicker_layouts_start_at_once_only_for_big_graphs() -> None:
    assert fallback_delay(SMALL, 8.5) == 1.0
    assert fallback_delay(SMALL, 0.6) == pytest.approx(0.2)
    assert fallback_delay(BIG, 8.5) == 0.0


def test_full_layout_is_used_when_it_is_fast(fakes: Fakes) -> None:
    fakes.program("dot", picture("<svg>full</svg>"), quick=picture("<svg>quick</svg>"))
    fakes.program("sfdp", picture("<svg>sfdp</svg>"))
    assert layout(SMALL, "svg") == Layout(b"<svg>full</svg>", "dot", None)
    assert [name for name, _ in fakes.calls()] == ["dot"]  # nothing else was started


def test_slow_full_layout_falls_back_with_a_note_and_is_killed(fakes: Fakes) -> None:
    fakes.program("dot", HANG, quick=picture("<svg>quick</svg>"))
    fakes.program("sfdp", picture("<svg>sfdp</svg>"))
    result = layout(SMALL, "svg", timeout=0.6)
    assert result == Layout(
        b"<svg>quick</svg>",
        "dot",
        "dot took longer than 0.6 s, so the diagram was drawn again with straight edges "
        "and a quicker layout",
    )
    # sfdp may have been killed before it logged: the quicker dot gave a better picture
    assert {"dot", "quick"} <= {name for name, _ in fakes.calls()}
    assert not any(alive(pid) for pid in fakes.pids())


def test_full_layout_wins_over_a_quicker_one_that_finished_first(fakes: Fakes) -> None:
    # a big graph: the quicker layouts start at once and end long before the full one
    fakes.program("dot", late_picture(0.3, "<svg>full</svg>"), quick=picture("<svg>quick</svg>"))
    fakes.program("sfdp", picture("<svg>sfdp</svg>"))
    assert layout(BIG, "svg", timeout=5.0) == Layout(b"<svg>full</svg>", "dot", None)
    assert {"dot", "quick"} <= {name for name, _ in fakes.calls()}


def test_sfdp_when_both_dot_layouts_are_too_slow(fakes: Fakes) -> None:
    fakes.program("dot", HANG)
    fakes.program("sfdp", picture("<svg>sfdp</svg>"))
    result = layout(SMALL, "svg", timeout=0.5)
    assert result == Layout(
        b"<svg>sfdp</svg>",
        "sfdp",
        "dot took longer than 0.5 s, and dot with quicker settings did not finish in time, "
        "so the diagram was drawn with sfdp (no phase boxes, a looser layout)",
    )
    assert not any(alive(pid) for pid in fakes.pids())


def test_deadline_kills_every_layout_and_their_children(fakes: Fakes) -> None:
    child_log = fakes.folder / "child.log"
    # the quicker dot starts a child of its own and does not exec it
    hang_with_child = f"{SLEEP} 30 & echo $! > {child_log}; wait"
    fakes.program("dot", HANG, quick=hang_with_child)
    fakes.program("sfdp", HANG)
    start = time.monotonic()
    with pytest.raises(GraphvizFailed) as info:
        layout(SMALL, "png", timeout=1.5)  # 1 s for Graphviz: time enough for the fakes to log
    assert time.monotonic() - start < 10.0  # not the 30 s the fakes would take
    assert info.value.message == (
        "Graphviz could not lay out the diagram within 1 s, even with quicker settings"
    )
    assert info.value.exit_code == 1
    pids = fakes.pids()
    assert len(pids) == 3
    assert not any(alive(pid) for pid in pids)  # the direct children are killed and reaped
    assert gone_soon(int(child_log.read_text(encoding="utf-8")))  # and the grandchild


def test_missing_sfdp_quicker_dot_still_used(fakes: Fakes) -> None:
    fakes.program("dot", HANG, quick=picture("<svg>quick</svg>"))  # no sfdp at all
    result = layout(SMALL, "svg", timeout=0.5)
    assert result.output == b"<svg>quick</svg>"
    assert result.note == (
        "dot took longer than 0.5 s, so the diagram was drawn again with straight edges "
        "and a quicker layout"
    )
    assert sorted(name for name, _ in fakes.calls()) == ["dot", "quick"]


def test_missing_sfdp_and_both_dot_layouts_too_slow(fakes: Fakes) -> None:
    fakes.program("dot", HANG)
    with pytest.raises(
        GraphvizFailed, match=r"^Graphviz could not lay out the diagram within 0.4 s"
    ):
        layout(SMALL, "svg", timeout=0.4)
    assert not any(alive(pid) for pid in fakes.pids())


def test_every_layout_failing_is_one_line_error(fakes: Fakes) -> None:
    error = "Error: <stdin>: syntax error in line 1 near {"
    fakes.program("dot", failure(1, error))
    fakes.program("sfdp", failure(1, error))
    with pytest.raises(GraphvizFailed) as info:
        layout(SMALL, "svg")
    assert info.value.message == f"Graphviz `dot` failed (exit 1): {error}"
    assert info.value.hint == "render with --format dot to see the DOT text it was given"
    # the quicker layouts were tried at once, not after the full layout's head start
    assert sorted(name for name, _ in fakes.calls()) == ["dot", "quick", "sfdp"]


def test_crashing_full_layout_falls_back_and_says_why(fakes: Fakes) -> None:
    fakes.program("dot", CRASH, quick=picture("<svg>quick</svg>"))
    result = layout(SMALL, "svg")
    assert result.output == b"<svg>quick</svg>"
    assert result.note == (
        "dot failed (signal 11: no output), so the diagram was drawn again with straight "
        "edges and a quicker layout"
    )


def test_layout_that_does_not_read_its_input(fakes: Fakes) -> None:
    fakes.program("dot", "printf '%s' '<svg/>'")  # exits without reading a big input
    big_text = "digraph {\n" + '  n [label="' + "x" * 4_000_000 + '"]\n}\n'
    assert layout(big_text, "svg").output == b"<svg/>"


def test_interrupt_kills_the_running_layouts(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.program("dot", HANG)

    def interrupted(self: graphviz_run.Race, seconds: float) -> None:
        time.sleep(0.2)  # let the fake log its call
        raise KeyboardInterrupt

    monkeypatch.setattr(graphviz_run.Race, "_wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        layout(SMALL, "svg")
    pids = fakes.pids()
    assert len(pids) == 1
    assert gone_soon(pids[0])


def test_cli_reports_failing_graphviz_in_one_line_without_traceback(fakes: Fakes) -> None:
    error = "Error: something went wrong"
    fakes.program("dot", failure(1, error))
    out = fakes.folder / "out.svg"
    args = ["render", "processes/goods-delivery.yaml", "-o", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "flowctl", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(fakes.folder)},
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f"flowctl: error: Graphviz `dot` failed (exit 1): {error}\n"
        "flowctl: hint: render with --format dot to see the DOT text it was given\n"
    )
    assert not out.exists()
