"""``flowctl test``: run scenario files, report failures and coverage."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from typing import Annotated

import typer

from flowctl.api import reports as report
from flowctl.api import scenarios
from flowctl.api.definitions import LintResult
from flowctl.api.scenarios import ScenarioReport
from flowctl.cli import output as output_mod
from flowctl.cli.output import Progress, echo, handle_errors, progress
from flowctl.cli.views import to_json
from flowctl.errors import UsageError


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"


def run_scenarios(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PATH]...",
            help="Scenario files or folders (searched recursively). Default: the workspace's "
                 "scenarios/ folder.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", "-f", help="Report format: text, json, or junit (JUnit XML "
                     "for CI test reports).", case_sensitive=False),
    ] = ReportFormat.text,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE",
                     help="Write the report to FILE (a one-line summary goes to stderr)."),
    ] = None,
    min_coverage: Annotated[
        float | None,
        typer.Option("--min-coverage", metavar="PCT",
                     help="Fail when a tested process's coverage (stages, results and "
                          "decision branches taken) is below PCT percent."),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", metavar="N", min=1,
                     help=f"Worker processes. Default: one per CPU from "
                          f"{scenarios.PARALLEL_MIN} scenarios on, else 1."),
    ] = None,
    processes: Annotated[
        str | None,
        typer.Option("--processes", metavar="DIR",
                     help="The processes folder the scenarios run against."),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option("--org", metavar="PATH", help="The org directory."),
    ] = None,
) -> None:
    """Run scenario tests of processes, in memory, and report coverage.

    Each scenario starts a process as someone, acts as people (results,
    fields, comments), moves the clock (SLAs, waits and escalations fire as
    `flowctl tick` would) and checks where the instance is, who holds it,
    its fields, notifications and journal. They run against the definitions
    in the working tree on a store in memory: nothing is written. A failure
    is reported at the file:line of its step, with what was expected and
    what was found. Exit status: 0 all passed, 1 a failure, a problem in a
    scenario file, or coverage below --min-coverage; 2 usage error.

    Examples:

        flowctl test

        flowctl test scenarios/contract-approval.yaml

        flowctl test --min-coverage 100

        flowctl test --format junit -o flowctl-tests.xml
    """
    with handle_errors():
        with _progress() as advance:
            result = scenarios.run_tests(paths or None, processes_dir=processes, org=org,
                                         jobs=jobs, min_coverage=min_coverage, progress=advance)
        if output is None:
            text = render(result, fmt.value, color=fmt is ReportFormat.text
                          and output_mod.color_enabled(sys.stdout))
            echo(text, end="")
        else:
            text = render(result, fmt.value)
            try:
                with open(output, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write(text)
            except OSError as exc:
                raise UsageError(
                    f"cannot write the report to {output}: {exc.strerror or exc}",
                    hint="pass --output a file in a folder that exists and is writable",
                ) from exc
            echo(summary(result), err=True)
        raise SystemExit(result.exit_code())


@contextmanager
def _progress() -> Iterator[Callable[[int], None]]:
    with ExitStack() as stack:
        bar: list[Progress] = []

        def advance(n: int) -> None:
            if not bar:
                bar.append(stack.enter_context(progress(None, "testing")))
            bar[0].advance(n)

        yield advance


def render(result: ScenarioReport, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return to_json(scenarios.to_json(result)) + "\n"
    if fmt == "junit":
        return scenarios.junit_xml(result)
    return text_report(result, color=color)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(result: ScenarioReport) -> str:
    passed = len(result.results) - len(result.failed)
    problems = sum(d.severity.value == "error" for d in result.diagnostics)
    parts = [f"{_plural(len(result.results), 'scenario')}: {passed} passed, "
             f"{len(result.failed)} failed"]
    if problems:
        parts.append(f"{_plural(problems, 'problem')} in scenario files (not run)")
    if result.below:
        parts.append(f"coverage below {result.min_coverage:g}% in "
                     + ", ".join(c.process for c in result.below))
    return "; ".join(parts) + f" ({_plural(len(result.files), 'file')}, " \
        f"{result.seconds:.2f} s)"


def text_report(result: ScenarioReport, *, color: bool = False) -> str:
    """The report as text; ``color``: PASS green, FAIL and what is below
    --min-coverage red (on a terminal)."""
    def paint(style: str) -> Callable[[str], str]:
        return output_mod.painter(style) if color else (lambda text: text)

    good, bad = paint("bold green"), paint("bold red")
    lines: list[str] = []
    if result.diagnostics:
        lint = LintResult(diagnostics=result.diagnostics,
                          files=sorted({d.file for d in result.diagnostics}),
                          sources=result.sources)
        body = report.render(lint, "text", palette=report.PLAIN)
        lines += [line for line in body.rstrip("\n").split("\n")
                  if not line.startswith("Found ")]
        while lines and not lines[-1]:
            lines.pop()
        lines.append("")
    current = None
    for r in result.results:
        if r.file != current:
            current = r.file
            lines.append(r.file)
        lines.append(f"  {good('PASS') if r.passed else bad('FAIL')}  {r.name}")
        if r.failure is not None:
            lines += ["        " + line for line in scenarios.failure_text(r).split("\n")]
    if result.coverage:
        lines.append("")
        lines.append("coverage (stages, results and decision branches taken):")
        width = max(len(c.process) for c in result.coverage)
        for c in result.coverage:
            flag = bad("  below --min-coverage") if c in result.below else ""
            lines.append(
                f"  {c.process:<{width}}  {c.percent:5.1f}%  stages "
                f"{c.stages - len(c.missing_stages)}/{c.stages}, results "
                f"{c.results - len(c.missing_results)}/{c.results}, branches "
                f"{c.branches - len(c.missing_branches)}/{c.branches}{flag}")
            for what, missing in (("stage", c.missing_stages), ("result", c.missing_results),
                                  ("branch", c.missing_branches)):
                for m in missing:
                    lines.append(f"      not taken: {what} {m}")
    lines.append("")
    lines.append(summary(result))
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    app.command("test")(run_scenarios)
