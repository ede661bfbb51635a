"""``flowctl render``: draw a process as SVG, PNG, DOT or Mermaid."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from flowctl.api import analytics, diagrams, instances
from flowctl.api.definitions import DefinitionError, DefinitionSet, expand_paths, load_process
from flowctl.api.diagrams import DiagramFormat, Highlight, Rendered, format_for_path, over_limits
from flowctl.cli import options as opt
from flowctl.cli.output import handle_errors, progress
from flowctl.errors import UsageError
from flowctl.model import Process

DEFAULT_FORMAT = "svg"


class HeatChoice(StrEnum):
    TIME = "time"
    COUNT = "count"
    SLA = "sla"


class FormatChoice(StrEnum):
    svg = "svg"
    png = "png"
    dot = "dot"
    mermaid = "mermaid"


def render(
    process: Annotated[
        str | None,
        typer.Argument(
            metavar="[PROCESS]",
            help="A process id (looked up in --processes) or a YAML file.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        FormatChoice | None,
        typer.Option(
            "--format",
            "-f",
            help="Diagram format. Default: from the -o file's suffix "
            "(.svg .png .dot .gv .mmd .mermaid), else svg.",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="File to write (a folder with --all). Default: standard output; png needs "
            "a file.",
        ),
    ] = None,
    all_processes: Annotated[
        bool, typer.Option("--all", help="Draw every process in --processes into the -o folder.")
    ] = False,
    processes_dir: Annotated[
        str, typer.Option("--processes", metavar="DIR", help="Folder of process definitions.")
    ] = "processes",
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.1,
            metavar="SECONDS",
            help="Seconds the drawing may take: dot's full layout is used if it finishes "
            "within this (less ~1.5 s kept for start-up and writing), else a quicker layout "
            "run beside it.",
        ),
    ] = 10.0,
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            metavar="ID",
            help="Draw the definition this instance runs on, with its current stage and "
            "the path it took marked.",
        ),
    ] = None,
    heat: Annotated[
        HeatChoice | None,
        typer.Option(
            "--heat",
            help="Draw a heat map from the store: stages coloured by median time in stage, "
            "instances that entered, or SLA met; each arrow labelled with how many "
            "instances took it (admins and auditors).",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="With --heat: from TIME (ISO-8601)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME",
                     help="With --heat: until TIME (ISO-8601, exclusive; default: now)."),
    ] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
) -> None:
    """Draw a process: phases as boxes, stages by kind, results on the arrows.

    Exit status: 0 drawn, 1 a definition is invalid (with --all: the others
    are still drawn), 2 usage error or Graphviz missing (svg and png need it;
    dot and mermaid do not), 3 internal error.

    Examples:

        flowctl render contract-approval -o contract-approval.svg

        flowctl render processes/goods-delivery.yaml --format mermaid

        flowctl render key-account-filing-approval -o diagram.png

        flowctl render --all -o docs/diagrams --format mermaid

        flowctl render --instance contract-approval-3 -o where-is-it.png

        flowctl render contract-approval --heat time --since 2026-11-01 -o heat.png
    """
    with handle_errors():
        if heat is not None:
            if instance is not None or all_processes or process is None:
                raise _usage(
                    "--heat draws one process from the store; name it, without --all or "
                    "--instance",
                    "flowctl render PROCESS --heat time|count|sla [-o FILE]",
                )
            _render_heat(process, heat.value, fmt, output, timeout, since, until, as_user, db,
                         org, processes_dir)
            return
        if since is not None or until is not None:
            raise _usage("--since and --until choose the period of a heat map",
                         "add --heat time|count|sla, or drop them")
        if instance is not None:
            if process is not None or all_processes:
                raise _usage(
                    "--instance draws one instance's process; do not name a process or --all",
                    "flowctl render --instance ID [-o FILE]",
                )
            _render_instance(instance, fmt, output, timeout, as_user, db, org, processes_dir)
            return
        if all_processes:
            code = _render_all(process, fmt, output, processes_dir, timeout)
            raise SystemExit(code)
        _render_one(process, fmt, output, processes_dir, timeout)


def _usage(message: str, hint: str) -> Exception:
    return UsageError(message, hint=hint)


def _choose_format(fmt: FormatChoice | None, output: str | None) -> DiagramFormat:
    if fmt is not None:
        return DiagramFormat(fmt.value)
    if output is not None:
        return format_for_path(output)
    return DiagramFormat(DEFAULT_FORMAT)


def _draw(
    proc: Process, fmt: DiagramFormat, timeout: float, highlight: Highlight | None
) -> Rendered:
    rendered = diagrams.render(proc, fmt, highlight=highlight, timeout=timeout)
    if rendered.note:
        print(f"flowctl: note: {proc.id}: {rendered.note}", file=sys.stderr)
    if fmt is DiagramFormat.MERMAID and isinstance(rendered.content, str):
        for problem in over_limits(rendered.content):
            print(f"flowctl: warning: {proc.id}: {problem}: viewers with Mermaid's default "
                  "settings show an error instead of the diagram; --format svg draws it",
                  file=sys.stderr)
    return rendered


def _write(path: str, content: str | bytes) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise _usage(
            f"cannot write the diagram to {path}: {exc.strerror or exc}",
            "pass -o a path you can write to",
        ) from exc


def _render_one(
    ref: str | None,
    fmt_opt: FormatChoice | None,
    output: str | None,
    processes_dir: str,
    timeout: float,
) -> None:
    if ref is None:
        raise _usage(
            "name the process to draw, or pass --all",
            "flowctl render PROCESS [-o FILE]  or  flowctl render --all -o FOLDER",
        )
    fmt = _choose_format(fmt_opt, output)
    if output is None and not fmt.is_text:
        raise _usage(
            f"{fmt.value} is binary and is not written to the terminal",
            f"pass -o FILE.{fmt.extension}",
        )
    proc = load_process(ref, processes_dir=processes_dir)
    emit(proc, fmt, output, timeout)


def _render_instance(
    instance: str,
    fmt_opt: FormatChoice | None,
    output: str | None,
    timeout: float,
    as_user: str | None,
    db: str | None,
    org: str | None,
    processes_dir: str,
) -> None:
    fmt = _choose_format(fmt_opt, output)
    if output is None and not fmt.is_text:
        raise _usage(
            f"{fmt.value} is binary and is not written to the terminal",
            f"pass -o FILE.{fmt.extension}",
        )
    card = instances.show(instance, as_user=as_user, db=db, org=org, processes_dir=processes_dir)
    proc = instances.definition(instance, db=db)
    highlight = diagrams.highlight(card)
    emit(proc, fmt, output, timeout, highlight)


def emit(
    proc: Process,
    fmt: DiagramFormat,
    output: str | None,
    timeout: float,
    highlight: Highlight | None = None,
) -> None:
    """Draw ``proc`` (marked for an instance with ``highlight``) to ``output``
    or standard output; the caller has checked that png has an ``output``."""
    content = _draw(proc, fmt, timeout, highlight).content
    if output is None:
        sys.stdout.write(content if isinstance(content, str) else content.decode())
        sys.stdout.flush()
        return
    _write(output, content)
    print(f"wrote {output}")


def _render_heat(
    process: str, measure: str, fmt_opt: FormatChoice | None, output: str | None,
    timeout: float, since: str | None, until: str | None, as_user: str | None,
    db: str | None, org: str | None, processes_dir: str,
) -> None:
    fmt = _choose_format(fmt_opt, output)
    if output is None and not fmt.is_text:
        raise _usage(
            f"{fmt.value} is binary and is not written to the terminal",
            f"pass -o FILE.{fmt.extension}",
        )
    rendered = analytics.heat_map(process, measure, fmt=fmt, since=since, until=until,
                                  timeout=timeout, as_user=as_user, db=db, org=org,
                                  processes_dir=processes_dir)
    if rendered.note:
        print(f"flowctl: note: {process}: {rendered.note}", file=sys.stderr)
    content = rendered.content
    if output is None:
        sys.stdout.write(content if isinstance(content, str) else content.decode())
        sys.stdout.flush()
        return
    _write(output, content)
    print(f"wrote {output}")


def _render_all(
    ref: str | None,
    fmt_opt: FormatChoice | None,
    output: str | None,
    processes_dir: str,
    timeout: float,
) -> int:
    if ref is not None:
        raise _usage(
            f"--all draws every process; do not also name one ('{ref}')",
            "drop PROCESS, or drop --all",
        )
    if output is None:
        raise _usage("--all needs -o FOLDER to write the diagrams into", "pass -o FOLDER")
    if os.path.isfile(output):
        raise _usage(f"--all writes into a folder, and {output} is a file", "pass -o FOLDER")
    if not os.path.isdir(processes_dir):
        raise _usage(
            f"no processes folder {processes_dir}/",
            "run from the folder that holds processes/, or pass --processes DIR",
        )
    fmt = _choose_format(fmt_opt, None)
    ws = DefinitionSet.load(expand_paths([processes_dir]))
    docs = [d for d in ws.documents if d.kind != "org"]
    if not docs:
        raise _usage(f"no process definitions in {processes_dir}/", "add YAML files to it")
    os.makedirs(output, exist_ok=True)
    failed = 0
    drawn: dict[str, str] = {}
    with progress(len(docs), f"drawing {len(docs)} processes") as bar:
        for doc in docs:
            if not _render_doc(doc.path, fmt, output, processes_dir, timeout, drawn):
                failed += 1
            bar.advance()
    return 1 if failed else 0


def _render_doc(path: str, fmt: DiagramFormat, output: str, processes_dir: str,
                timeout: float, drawn: dict[str, str]) -> bool:
    """Draw one file of ``render --all`` into ``output``; False when it was skipped."""
    try:
        proc = load_process(path, processes_dir=processes_dir)
    except DefinitionError as exc:
        print(f"flowctl: error: skipped {exc.message}", file=sys.stderr)
        return False
    if proc.id in drawn:
        print(
            f"flowctl: error: skipped {path}: process id '{proc.id}' was already "
            f"drawn from {drawn[proc.id]}",
            file=sys.stderr,
        )
        return False
    drawn[proc.id] = path
    target = os.path.join(output, f"{proc.id}.{fmt.extension}")
    _write(target, _draw(proc, fmt, timeout, None).content)
    print(f"wrote {target}")
    return True


def register(app: typer.Typer) -> None:
    app.command("render")(render)
