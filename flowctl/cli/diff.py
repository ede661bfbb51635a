"""``flowctl diff``: what a change to process definitions does, in reviewer's words."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from flowctl.api import diff as api_diff
from flowctl.api.diff import Change, DiffReport, Impact
from flowctl.cli import options as opt
from flowctl.cli import views as fmt
from flowctl.cli.output import color_enabled, echo, handle_errors, painter
from flowctl.errors import UsageError
from flowctl.text import sanitize


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def diff(
    old: Annotated[str | None, typer.Argument(
        metavar="[OLD]", help="The old version: a process definition file.",
        show_default=False)] = None,
    new: Annotated[str | None, typer.Argument(
        metavar="[NEW]", help="The new version of the same process: a file.",
        show_default=False)] = None,
    git: Annotated[str | None, typer.Option(
        "--git", metavar="REV",
        help="Compare every definition in the processes folder between git revisions: REV "
             "(that revision and the working tree), A..B, or A...B (B against where it left A, "
             "as a pull request shows it).",
        show_default=False)] = None,
    out_format: Annotated[DiffFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="text (coloured on a terminal), markdown (a pull-request comment with a "
             "summary table and Mermaid drawings) or json (docs/diff.md).")] = DiffFormat.text,
    exit_code: Annotated[bool, typer.Option(
        "--exit-code",
        help="Exit 1 when the behaviour changed (as `git diff --exit-code`); without it, "
             "a diff that ran exits 0.")] = False,
    processes_dir: Annotated[str | None, opt.processes()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
) -> None:
    """Compare two versions of process definitions: changes, weakened control, running work.

    Processes are compared by id: stages, results and fields by theirs, so
    moving things around in the file, reformatting and comments show as "no
    behaviour change". Each change that weakens control (an approval removed
    or made avoidable, approvers widened, a threshold moved so fewer cases
    are checked, an SLA lengthened, a reject path removed...) is flagged.
    With a store (--db, or the workspace's when it exists) it also says how
    many running instances sit in each stage that changes or disappears, and
    which could move to the new version as they are.

    Both versions must lint clean. Exit status: 0 compared (with
    --exit-code: no behaviour change), 1 behaviour changed (with
    --exit-code) or a version does not lint, 2 usage error (an unknown
    revision, not a git repository, two different processes), 4 the store
    given with --db cannot be read.

    Examples:

        flowctl diff old/contract-approval.yaml processes/contract-approval.yaml

        flowctl diff --git HEAD                  # uncommitted changes

        flowctl diff --git origin/main...HEAD --format markdown > comment.md

        flowctl diff --git v1.2..v1.3 --format json
    """
    with handle_errors():
        report = _run(old, new, git, processes_dir, db, org)
        if out_format is DiffFormat.json:
            echo(fmt.to_json(report.to_json()))
        elif out_format is DiffFormat.markdown:
            echo(api_diff.markdown(report), end="")
        else:
            echo("\n".join(text_lines(report, color=color_enabled())))
        if exit_code and report.behaviour_changed:
            raise SystemExit(1)


def _run(old: str | None, new: str | None, git: str | None, processes_dir: str | None,
         db: str | None, org: str | None) -> DiffReport:
    if git is not None:
        if old is not None:
            raise UsageError("--git compares revisions of the processes folder; do not also "
                             "name files",
                             hint="flowctl diff --git REV  or  flowctl diff OLD NEW")
        return api_diff.diff_git(git, processes_dir=processes_dir, db=db, org=org)
    if old is None or new is None:
        raise UsageError("name two files to compare, or revisions with --git",
                         hint="flowctl diff OLD.yaml NEW.yaml  or  flowctl diff --git "
                              "origin/main...HEAD")
    return api_diff.diff_files(old, new, db=db, org=org)


def _sign(c: Change) -> str:
    if c.what.endswith("-added"):
        return "+"
    if c.what.endswith("-removed"):
        return "-"
    return "~"


def text_lines(report: DiffReport, *, color: bool = False) -> list[str]:
    """The text report: per process its changes, flags and impact."""
    paint = {k: (painter(v) if color else (lambda s: s)) for k, v in (
        ("+", "green"), ("-", "red"), ("~", "yellow"), ("!", "bold red"), ("h", "bold"),
        ("dim", "dim"))}
    out = [f"{sanitize(report.old)} -> {sanitize(report.new)}"]
    if not report.entries:
        out.append("no process definition changed")
        return out
    for e in report.entries:
        d = e.diff
        where = sanitize(d.new_source or d.old_source or "")
        behaviour = sum(c.behaviour for c in d.changes)
        weak = len(d.weakening)
        if d.status == "added":
            head = "new process"
        elif d.status == "removed":
            head = "removed"
        elif not behaviour:
            head = "no behaviour change"
        else:
            head = f"{behaviour} change" + ("" if behaviour == 1 else "s")
        if weak:
            head += f", {weak} weaken" + ("s" if weak == 1 else "") + " control"
        out += ["", paint["h"](f"{d.process}") + f" ({where}): {head}"]
        for c in d.changes:
            sign = _sign(c)
            line = f"  {sign} {sanitize(c.message)}"
            if not c.behaviour:
                line += " (wording only)"
                out.append(paint["dim"](line))
            else:
                out.append(paint[sign](line))
            if c.weakens:
                out.append(paint["!"](f"    ! weakens control: {sanitize(c.weakens)}"))
        if e.impact is not None:
            out += _impact_lines(e.impact)
    return out


def _impact_lines(i: Impact) -> list[str]:
    n = i.running
    out = [f"  running instances ({sanitize(i.store)}): {n}"]
    for s in i.stages:
        out.append(f"    at '{s.stage}' ({s.change}): {s.running}"
                   + (f": {', '.join(s.instances)}" if s.instances else ""))
    out.append(f"    could move to the new version as they are: {len(i.can_move)}"
               + (f": {', '.join(i.can_move)}" if i.can_move else ""))
    for b in i.cannot_move:
        out.append(f"    cannot move: {b.instance} at '{b.stage}': {'; '.join(b.reasons)}")
    return out


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
