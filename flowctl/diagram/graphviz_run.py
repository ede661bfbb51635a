"""Run Graphviz to lay out DOT text as SVG or PNG, under a time limit.

``dot`` can take minutes on large, cross-linked graphs (300 stages with
long-range edges: 15-140 s). So it runs with a timeout; when that passes,
``dot`` runs again with cheap settings (straight edges, one network-simplex
pass), and if even that is too slow, ``sfdp`` draws it without clusters.
The result says which layout was used so the caller can tell the user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from flowctl.errors import FlowctlError

DOT_TIMEOUT = 10.0  # seconds per attempt
INSTALL_HINT = (
    "install Graphviz with `sh scripts/install-system-deps.sh` (Debian/Ubuntu, from a "
    "flowctl checkout) or your package manager's `graphviz` package, or use --format dot "
    "or --format mermaid, which need no Graphviz"
)
PNG_DPI = "120"


class GraphvizNotFound(FlowctlError):
    """``dot`` is not installed: SVG and PNG cannot be drawn."""

    exit_code = 2


class GraphvizFailed(FlowctlError):
    """Graphviz ran but gave no picture (an error, or too slow every time)."""

    exit_code = 1


@dataclass(frozen=True)
class Attempt:
    engine: str  # the Graphviz program
    options: tuple[str, ...]  # extra command-line options
    note: str | None  # what the user is told when this attempt's result is used


ATTEMPTS: tuple[Attempt, ...] = (
    Attempt("dot", (), None),
    Attempt(
        "dot",
        ("-Gsplines=line", "-Gnslimit=1", "-Gnslimit1=1", "-Gmclimit=0.1"),
        "dot took longer than {timeout:g} s, so the diagram was drawn again with "
        "straight edges and a quicker layout",
    ),
    Attempt(
        "sfdp",
        ("-Goverlap=prism", "-Gsplines=false"),
        "dot took longer than {timeout:g} s twice, so the diagram was drawn with sfdp "
        "(no phase boxes, a looser layout)",
    ),
)


@dataclass(frozen=True)
class Layout:
    output: bytes
    engine: str
    note: str | None  # set when a fallback layout was used


def find_binary(name: str = "dot", fmt: str = "svg or png") -> str:
    """The path of a Graphviz program; ``GraphvizNotFound`` (one line) if absent."""
    path = shutil.which(name)
    if path is None:
        raise GraphvizNotFound(
            f"cannot draw {fmt}: Graphviz's `{name}` command is not installed; {INSTALL_HINT}"
        )
    return path


def _run(binary: str, args: list[str], dot_text: str, timeout: float) -> bytes:
    """Output of one Graphviz run; raises TimeoutExpired or GraphvizFailed."""
    proc = subprocess.run(
        [binary, *args],
        input=dot_text.encode("utf-8"),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        detail = " ".join(proc.stderr.decode("utf-8", "replace").split()) or "no output"
        name = os.path.basename(binary)
        raise GraphvizFailed(
            f"Graphviz `{name}` failed (exit {proc.returncode}): {detail}",
            hint="render with --format dot to see the DOT text it was given",
        )
    return proc.stdout


def layout(dot_text: str, fmt: str, *, timeout: float = DOT_TIMEOUT) -> Layout:
    """Lay out ``dot_text`` as ``fmt`` (``svg`` or ``png``)."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"Graphviz output format must be svg or png, not {fmt!r}")
    args = [f"-T{fmt}"] + ([f"-Gdpi={PNG_DPI}"] if fmt == "png" else [])
    binary = find_binary("dot", fmt)
    for attempt in ATTEMPTS:
        engine = binary if attempt.engine == "dot" else shutil.which(attempt.engine)
        if engine is None:
            continue
        try:
            out = _run(engine, [*args, *attempt.options], dot_text, timeout)
        except subprocess.TimeoutExpired:
            continue
        note = attempt.note.format(timeout=timeout) if attempt.note else None
        return Layout(out, attempt.engine, note)
    raise GraphvizFailed(
        f"Graphviz could not lay out the diagram within {timeout:g} s, even with quicker settings",
        hint="render with --format mermaid or --format dot, or split the process into subprocesses",
    )
