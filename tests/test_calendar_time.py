"""Calendar time: months and years (``1mo``, ``2y``, ISO 8601 ``P1M``) with
calendar arithmetic, working days (``5bd``) beside 24-hour days, everywhere a
duration is taken (SLA, escalations, waits, task delays, ``pause --for``).
The worked example of docs/time.md is run as written."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clirun import invoke
from ruamel.yaml import YAML

from flowctl import api, engine
from flowctl.api.definitions import load_org
from flowctl.definition.build import build_process
from flowctl.definition.durations import Duration, DurationError, parse_duration
from flowctl.engine import Context, Start
from flowctl.engine.calendars import add_duration, add_months, add_working_days
from flowctl.model import Calendar, Process

ROOT = Path(__file__).resolve().parent.parent
TIME_DOC = (ROOT / "docs" / "time.md").read_text(encoding="utf-8")
ORG = load_org(processes_dir=str(ROOT / "processes"))
UTC_CAL = Calendar(path=())


def _calendar_time_section() -> str:
    start = TIME_DOC.index("## Calendar time\n")
    return TIME_DOC[start:TIME_DOC.index("\n## ", start + 4)]


SECTION = _calendar_time_section()
DOC_YAML: str = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)[0]
ROWS: list[tuple[str, str]] = re.findall(r"^\| `([^`]+)` \| [^|]+ \| ([^|]+) \|$", SECTION, re.M)


def _process(text: str) -> Process:
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return build_process(data)


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(("text", "months", "bd", "seconds"), [
    ("1mo", 1, 0, 0),
    ("2y", 24, 0, 0),
    ("1y6mo", 18, 0, 0),
    ("5bd", 0, 5, 0),
    ("1bd4h", 0, 1, 4 * 3600),
    ("2w3d", 0, 0, 17 * 86400),
    ("1d12h", 0, 0, 36 * 3600),
    ("P1M", 1, 0, 0),
    ("P1Y", 12, 0, 0),
    ("P2W", 0, 0, 14 * 86400),
    ("PT36H", 0, 0, 36 * 3600),
    ("P1Y2M10DT2H30M", 14, 0, 10 * 86400 + 2 * 3600 + 30 * 60),
])
def test_durations_parse_into_months_working_days_and_a_fixed_length(
        text: str, months: int, bd: int, seconds: int) -> None:
    d = parse_duration(text)
    assert (d.months, d.business_days, d.seconds, d.text) == (months, bd, seconds, text)


SYNTAX = ("expected an integer and a unit, such as 30m, 24h, 5d, 5bd, 2w, 1mo, 2y or 1d12h"
          " (units: y mo w d bd h m s), or ISO 8601 such as P1M or P1Y2M10DT2H30M")


@pytest.mark.parametrize(("text", "message"), [
    ("1.5h", f"'1.5h' is not a duration: {SYNTAX}"),
    ("12h1d", f"'12h1d' is not a duration: {SYNTAX}"),
    ("1mo1y", f"'1mo1y' is not a duration: {SYNTAX}"),
    ("1m1mo", f"'1m1mo' is not a duration: {SYNTAX}"),
    ("P", f"'P' is not a duration: {SYNTAX}"),
    ("PT", f"'PT' is not a duration: {SYNTAX}"),
    ("P1.5D", f"'P1.5D' is not a duration: {SYNTAX}"),
    ("P1H", f"'P1H' is not a duration: {SYNTAX}"),
    ("p1m", f"'p1m' is not a duration: {SYNTAX}"),
    ("1d2bd", "'1d2bd' mixes d (24-hour days) and bd (working days); use one of them"),
    ("0mo", "'0mo' is zero: a duration must be longer than zero"),
    ("P0D", "'P0D' is zero: a duration must be longer than zero"),
    ("101y", "'101y' is longer than 100 years, the longest duration allowed"),
    ("999999w", "'999999w' is longer than 100 years, the longest duration allowed"),
])
def test_bad_durations_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert str(err.value) == message


# ------------------------------------------------------------------ arithmetic


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("start", "months", "due"), [
    ("2027-01-31T10:00", 1, "2027-02-28T10:00"),  # February is shorter
    ("2028-01-31T10:00", 1, "2028-02-29T10:00"),  # a leap year
    ("2028-02-29T10:00", 12, "2029-02-28T10:00"),
    ("2027-03-31T10:00", 1, "2027-04-30T10:00"),
    ("2027-01-31T10:00", 2, "2027-03-31T10:00"),  # from the start, not month by month
    ("2027-11-15T08:00", 3, "2028-02-15T08:00"),  # over a year end
])
def test_months_are_calendar_months(start: str, months: int, due: str) -> None:
    assert add_months(_at(start), months) == _at(due)


def test_months_keep_the_local_time_of_day_across_a_clock_change() -> None:
    # 09:00 in Berlin on 15 March (UTC+1) is 09:00 on 15 April (UTC+2)
    due = add_months(datetime(2027, 3, 15, 8, 0, tzinfo=UTC), 1, "Europe/Berlin")
    assert due == datetime(2027, 4, 15, 7, 0, tzinfo=UTC)


def test_working_days_skip_weekends_and_holidays() -> None:
    cal = Calendar(path=(), holidays=("2026-12-01",))
    monday_noon = _at("2026-11-30T12:00")
    assert add_working_days(monday_noon, 1, cal) == _at("2026-12-02T12:00")
    assert add_working_days(monday_noon, 5, UTC_CAL) == _at("2026-12-07T12:00")
    # a Saturday start counts from Monday 09:00
    assert add_working_days(_at("2026-12-05T15:00"), 5, UTC_CAL) == _at("2026-12-14T09:00")


def test_d_is_24_hours_and_bd_a_working_day_outside_working_time() -> None:
    friday_noon = _at("2026-12-04T12:00")
    assert add_duration(friday_noon, parse_duration("1d"), UTC_CAL) == _at("2026-12-05T12:00")
    assert add_duration(friday_noon, parse_duration("1bd"), UTC_CAL) == _at("2026-12-07T12:00")
    assert add_duration(friday_noon, parse_duration("P1M"), UTC_CAL) == _at("2027-01-04T12:00")


def test_a_month_on_a_business_hours_sla_moves_to_the_next_working_moment() -> None:
    # 29 January 2027 + 1 month = Sunday 28 February: due Monday 1 March 09:00
    due = add_duration(_at("2027-01-29T10:00"), parse_duration("1mo"), UTC_CAL, True)
    assert due == _at("2027-03-01T09:00")


# ------------------------------------------------------ the docs/time.md example


def test_the_docs_example_lints_clean_and_5d_gets_the_warning(tmp_path: Path) -> None:
    path = tmp_path / "review-time.yaml"
    path.write_text(DOC_YAML, encoding="utf-8")
    org = str(ROOT / "processes" / "org.yaml")
    assert [d.format() for d in api.lint_paths([str(path)], org=org).diagnostics] == []
    path.write_text(DOC_YAML.replace("within: 5bd", "within: 5d"), encoding="utf-8")
    found = api.lint_paths([str(path)], org=org).diagnostics
    line = DOC_YAML.splitlines().index("      within: 5bd") + 1
    assert [d.severity.value for d in found] == ["warning"]
    assert [d.format() for d in found] == [
        f"{path}:{line}:15: FL252 '5d' on an SLA with business_hours: true counts"
        " 120 working hours (about 13.3 working days of 9 h) for its d and w, which are"
        " 24-hour days; for 5 working days write '5bd'"
    ]


@pytest.mark.parametrize(("written", "due"), ROWS, ids=[r[0] for r in ROWS])
def test_the_docs_table_is_what_the_engine_computes(written: str, due: str) -> None:
    proc = _process(DOC_YAML.replace("within: 5bd", f"within: {written}"))
    ctx = Context("alice", ORG, datetime(2026, 11, 30, 9, 0, tzinfo=UTC))  # 12:00 in Moscow
    inst = engine.start(proc, Start({}), ctx, instance_id="r-1", digest="d" * 64).instance
    assert inst.due_at is not None
    moscow = engine.parse_time(inst.due_at).astimezone(ZoneInfo("Europe/Moscow"))
    assert f"{moscow:%A} {moscow.day} {moscow:%B %Y, %H:%M}" == due.strip()


def test_escalations_of_the_docs_example_fire_at_calendar_times() -> None:
    proc = _process(DOC_YAML)
    ctx = Context("alice", ORG, datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    inst = engine.start(proc, Start({}), ctx, instance_id="r-1", digest="d" * 64).instance
    assert [(t.kind, t.index, t.at) for t in inst.timers] == [
        ("due", 0, "2026-12-07T09:00:00Z"),
        ("escalation", 0, "2026-12-01T09:00:00Z"),
        ("escalation", 1, "2026-12-30T09:00:00Z"),
    ]


# ------------------------------------------------- waits, task delays, pause --for


WAIT = """\
kind: process
id: renewal
name: Renewal
stages:
  - id: sign
    kind: task
    start: true
    assignee: initiator
    on_enter:
      tasks:
        - id: remind-customer
          name: Remind the customer
          delay: P1M
    results:
      signed: wait-a-month
  - id: wait-a-month
    kind: wait
    for: 1mo
    next: finish
  - id: finish
    kind: end
"""


def test_a_wait_and_a_task_delay_count_calendar_months() -> None:
    proc = _process(WAIT)
    jan31 = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
    inst = engine.start(proc, Start({}), Context("alice", ORG, jan31), instance_id="w-1",
                        digest="d" * 64).instance
    assert [(t.id, t.status, t.at) for t in inst.tasks] == [
        ("remind-customer", "scheduled", "2027-02-28T10:00:00Z")]
    tr = engine.apply(proc, inst, engine.Advance("signed"), Context("alice", ORG, jan31))
    assert (tr.instance.status, tr.instance.wake_at) == ("waiting", "2027-02-28T10:00:00Z")
    assert tr.events[-1].data == {"wait": "for 1mo", "wake_at": "2027-02-28T10:00:00Z"}


def _cli(tmp_path: Path, *args: str, code: int = 0) -> Any:
    procs = tmp_path / "processes"
    if not procs.exists():
        procs.mkdir()
        (procs / "renewal.yaml").write_text(WAIT, encoding="utf-8")
        (procs / "org.yaml").write_text(
            (ROOT / "processes" / "org.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    env: dict[str, str | None] = {
        "FLOWCTL_DB": str(tmp_path / "flowctl.db"), "FLOWCTL_PROCESSES": str(procs),
        "FLOWCTL_NOW": "2028-02-29T10:00:00Z", "FLOWCTL_ORG": None, "FLOWCTL_USER": "alice",
        "FLOWCTL_DEBUG": None,
    }
    result = invoke(list(args), env=env)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def test_pause_for_two_years_resumes_on_the_calendar_date(tmp_path: Path) -> None:
    _cli(tmp_path, "start", "renewal")
    _cli(tmp_path, "pause", "renewal-1", "--for", "2y")
    card = json.loads(_cli(tmp_path, "show", "renewal-1", "--json").stdout)["instance"]
    assert card["timers"] == [{"kind": "resume", "at": "2030-02-28T10:00:00Z", "stage": "sign",
                               "index": 0, "key": "resume:sign:0:v2"}]
    paused = [e for e in json.loads(_cli(tmp_path, "journal", "renewal-1", "--json").stdout)
              if e["kind"] == "paused"]
    assert paused[0]["data"]["for"] == "2y"
    assert paused[0]["data"]["until"] == "2030-02-28T10:00:00Z"


def test_pause_for_a_bad_duration_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    _cli(tmp_path, "start", "renewal")
    before = _cli(tmp_path, "journal", "renewal-1", "--json").stdout
    r = _cli(tmp_path, "pause", "renewal-1", "--for", "1.5mo", code=2)
    assert r.stderr.splitlines()[0] == f"flowctl: error: --for '1.5mo' is not a duration: {SYNTAX}"
    assert _cli(tmp_path, "journal", "renewal-1", "--json").stdout == before


def test_duration_is_plain_data() -> None:
    assert parse_duration("1mo") == Duration("1mo", months=1)
