"""Run Graphviz to lay out DOT text as SVG or PNG, within one time limit.

``dot`` can take minutes on large, cross-linked graphs (300 stages with
long-range edges: 15-140 s). So the full ``dot`` layout runs under one overall
deadline, and two quicker layouts run beside it: ``dot`` with cheap settings
(straight edges, one network-simplex pass) and ``sfdp`` (no phase boxes).
They start once the full layout has run alone for a while, or at once for a
graph big enough to be at risk. The full layout is used whenever it finishes
in time; otherwise the best quicker layout that finished, and the result
says which and why, so the caller can tell the user. Every Graphviz process
that is no longer needed is killed (with its process group) before
``layout`` returns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any, NamedTuple

from flowctl.errors import FlowctlError

DOT_TIMEOUT = 10.0  # the default time limit of a drawing, in seconds
RESERVE = 1.5  # seconds of the limit kept for start-up and writing the file ...
MIN_LAYOUT = 1.0  # ... but Graphviz gets at least this much (or the whole limit if less)
FALLBACK_AFTER = 1.0  # seconds the full layout runs alone before the quicker ones start
BIG_GRAPH_EDGES = 300  # from this many edges the quicker layouts start at once
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


class Attempt(NamedTuple):
    engine: str  # the Graphviz program
    options: tuple[str, ...]  # extra command-line options
    name: str  # how a note names this layout when it did not give the picture
    drawn: str  # how a note says the picture was drawn when this layout gave it


ATTEMPTS: tuple[Attempt, ...] = (  # best first
    Attempt("dot", (), "dot", "drawn by dot"),
    Attempt(
        "dot",
        ("-Gsplines=line", "-Gnslimit=1", "-Gnslimit1=1", "-Gmclimit=0.1"),
        "dot with quicker settings",
        "drawn again with straight edges and a quicker layout",
    ),
    Attempt(
        "sfdp",
        ("-Goverlap=prism", "-Gsplines=false"),
        "sfdp",
        "drawn with sfdp (no phase boxes, a looser layout)",
    ),
)


class Layout(NamedTuple):
    output: bytes
    engine: str
    note: str | None  # set when a fallback layout was used


class Outcome(NamedTuple):
    """How one Graphviz run ended."""

    output: bytes  # empty unless it gave a picture
    status: str | None  # None: a picture; else e.g. "exit 1", "signal 11", "could not start"
    detail: str = ""  # one line: what it said on standard error

    @property
    def error(self) -> str | None:
        return None if self.status is None else f"{self.status}: {self.detail}"


def find_binary(name: str = "dot", fmt: str = "svg or png") -> str:
    """The path of a Graphviz program; ``GraphvizNotFound`` (one line) if absent."""
    path = which(name)
    if path is None:
        raise GraphvizNotFound(
            f"cannot draw {fmt}: Graphviz's `{name}` command is not installed; {INSTALL_HINT}"
        )
    return path


def which(name: str) -> str | None:
    """The path of the program ``name`` on PATH, like ``shutil.which``.

    On POSIX it is looked up here: ``shutil`` (with its compression modules)
    costs ~2 ms of start-up.
    """
    if os.name != "posix":
        import shutil

        return shutil.which(name)
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder, name)
        if folder and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def layout_budget(timeout: float) -> float:
    """Seconds Graphviz gets out of a drawing's ``timeout``.

    ``RESERVE`` is kept for the start-up and for writing the file, so that the
    whole command ends within ``timeout``; Graphviz still gets at least
    ``MIN_LAYOUT`` seconds (all of ``timeout`` when it is shorter than that).
    """
    return max(min(timeout, MIN_LAYOUT), timeout - RESERVE)


def fallback_delay(dot_text: str, budget: float) -> float:
    """Seconds the full layout runs alone before the quicker layouts start."""
    if dot_text.count("->") >= BIG_GRAPH_EDGES:
        return 0.0
    return min(FALLBACK_AFTER, budget / 3)


def layout(dot_text: str, fmt: str, *, timeout: float = DOT_TIMEOUT) -> Layout:
    """Lay out ``dot_text`` as ``fmt`` (``svg`` or ``png``) within ``timeout`` seconds.

    Raises ``GraphvizNotFound`` without ``dot``, ``GraphvizFailed`` when no
    layout gave a picture in time.
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"Graphviz output format must be svg or png, not {fmt!r}")
    args = [f"-T{fmt}"] + ([f"-Gdpi={PNG_DPI}"] if fmt == "png" else [])
    dot = find_binary("dot", fmt)
    attempts: list[Attempt] = []
    commands: list[list[str]] = []
    for attempt in ATTEMPTS:
        binary = dot if attempt.engine == "dot" else which(attempt.engine)
        if binary is not None:  # sfdp may be missing: the others still run
            attempts.append(attempt)
            commands.append([binary, *args, *attempt.options])
    budget = layout_budget(timeout)
    race = Race(commands, dot_text.encode("utf-8"))
    try:
        winner = race.run(budget, fallback_delay(dot_text, budget))
    finally:
        race.stop()
    if winner is None:
        raise _failure(attempts, race.outcomes, budget)
    note = _note(attempts, race.outcomes, winner, budget) if winner else None
    return Layout(race.outcomes[winner].output, attempts[winner].engine, note)


def _reason(index: int, attempt: Attempt, outcome: Outcome | None, budget: float) -> str:
    if outcome is not None:
        return f"{attempt.name} failed ({outcome.error})"
    if index == 0:  # the full layout ran for the whole budget
        return f"{attempt.name} took longer than {budget:g} s"
    return f"{attempt.name} did not finish in time"


def _note(attempts: list[Attempt], outcomes: dict[int, Outcome], winner: int, budget: float) -> str:
    """Why the better layouts were not used, and how the picture was drawn."""
    reasons = [_reason(i, attempts[i], outcomes.get(i), budget) for i in range(winner)]
    return f"{', and '.join(reasons)}, so the diagram was {attempts[winner].drawn}"


def _failure(
    attempts: list[Attempt], outcomes: dict[int, Outcome], budget: float
) -> GraphvizFailed:
    if len(outcomes) == len(attempts):  # every layout ended in an error: say the first
        first = outcomes[0]
        return GraphvizFailed(
            f"Graphviz `{attempts[0].engine}` failed ({first.status}): {first.detail}",
            hint="render with --format dot to see the DOT text it was given",
        )
    return GraphvizFailed(
        f"Graphviz could not lay out the diagram within {budget:g} s, even with quicker settings",
        hint="render with --format mermaid or --format dot, or split the process into subprocesses",
    )


def _outcome(returncode: int, stdout: bytes, stderr: bytes) -> Outcome:
    if returncode == 0 and stdout:
        return Outcome(stdout, None)
    status = f"signal {-returncode}" if returncode < 0 else f"exit {returncode}"
    detail = " ".join(stderr.decode("utf-8", "replace").split()) or "no output"
    return Outcome(b"", status, detail)


class Race:
    """Graphviz commands run side by side on the same input; the best that ends in time wins.

    Command 0 starts at once; the others start together after ``delay``
    seconds, or as soon as every started command has failed. Command ``i``
    wins as soon as it gave a picture and every better command (``< i``)
    failed; at the deadline, the best picture there is wins. Commands that
    can no longer win are killed; ``stop`` kills the rest.
    """

    def __init__(self, commands: list[list[str]], data: bytes) -> None:
        self.commands = commands
        self.data = data
        self.outcomes: dict[int, Outcome] = {}  # the commands that ended, by index
        self.procs: dict[int, subprocess.Popen[bytes]] = {}  # started and not yet ended
        self.killed: set[int] = set()
        self.threads: list[threading.Thread] = []
        self.ended = Mailbox()
        self.started = 0

    def run(self, budget: float, delay: float) -> int | None:
        """The index of the winning command; None when none gave a picture in time."""
        start = time.monotonic()
        deadline, others_at = start + budget, start + delay
        self._start(0)
        while True:
            winner = self._decided()
            if winner is not None:
                return winner
            now = time.monotonic()
            if self.started < len(self.commands) and (
                now >= others_at or len(self.outcomes) == self.started
            ):
                for index in range(self.started, len(self.commands)):
                    self._start(index)
                continue
            if now >= deadline or len(self.outcomes) == len(self.commands):
                return self._best()
            wake = deadline if self.started == len(self.commands) else min(deadline, others_at)
            self._wait(wake - now)

    def stop(self) -> None:
        """Kill every command still running and wait for their readers."""
        for index in list(self.procs):
            self._kill(index)
        for thread in self.threads:
            thread.join(timeout=5.0)

    def _decided(self) -> int | None:
        for index in range(len(self.commands)):
            outcome = self.outcomes.get(index)
            if outcome is None:
                return None  # still running or not started: it may yet give a better picture
            if outcome.error is None:
                return index
        return None

    def _best(self) -> int | None:
        pictures = [i for i, o in self.outcomes.items() if o.error is None]
        return min(pictures) if pictures else None

    def _start(self, index: int) -> None:
        self.started = max(self.started, index + 1)
        try:
            proc = subprocess.Popen(
                self.commands[index],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **_own_group(),
            )
        except OSError as exc:
            self.outcomes[index] = Outcome(b"", "could not start", str(exc.strerror or exc))
            return
        self.procs[index] = proc
        thread = threading.Thread(target=self._collect, args=(index, proc), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _collect(self, index: int, proc: subprocess.Popen[bytes]) -> None:
        """In a thread: feed the input, read the output, report how the run ended."""
        try:
            stdout, stderr = proc.communicate(self.data)
        except (OSError, ValueError) as exc:  # the pipes failed; the process is killed by stop()
            self.ended.put((index, Outcome(b"", "could not run", str(exc))))
            return
        self.ended.put((index, _outcome(proc.returncode, stdout, stderr)))

    def _wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a command to end; kill those it makes useless."""
        message = self.ended.get(seconds)
        if message is None:
            return
        index, outcome = message
        if index in self.killed:
            return  # it could no longer win: how it ended does not matter
        self.outcomes[index] = outcome
        self.procs.pop(index, None)
        if outcome.error is None:
            for worse in [i for i in self.procs if i > index]:
                self._kill(worse)

    def _kill(self, index: int) -> None:
        proc = self.procs.pop(index)
        self.killed.add(index)
        if proc.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)  # with anything it started
            else:
                proc.kill()
        except OSError:
            pass  # it ended meanwhile


class Mailbox:
    """Messages from the reader threads: ``queue.SimpleQueue`` without importing ``queue``."""

    def __init__(self) -> None:
        self.ready = threading.Condition()
        self.messages: list[tuple[int, Outcome]] = []

    def put(self, message: tuple[int, Outcome]) -> None:
        with self.ready:
            self.messages.append(message)
            self.ready.notify()

    def get(self, timeout: float) -> tuple[int, Outcome] | None:
        """The oldest message, waiting up to ``timeout`` seconds; None if none came."""
        with self.ready:
            if not self.messages:
                self.ready.wait(max(timeout, 0.0))
            return self.messages.pop(0) if self.messages else None


def _own_group() -> dict[str, Any]:
    """Popen options that put a command in a process group of its own (POSIX)."""
    return {"process_group": 0} if os.name == "posix" else {}
