"""Field rules: ``pattern``, ``format`` (email, phone, url, date) and date limits
relative to today (docs/format.md, "Patterns and formats", "Date limits").
The refusals of the docs are produced by the real entry point, exactly; each
exits 1 and writes nothing (a refused first start leaves no database)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke
from ruamel.yaml import YAML
from typer.testing import Result

from flowctl import api, engine
from flowctl.api.definitions import load_org
from flowctl.definition.build import build_process
from flowctl.engine import Context, RuleBroken, Start

ROOT = Path(__file__).resolve().parent.parent
FORMAT = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
ORG = load_org(processes_dir=str(ROOT / "processes"))
NOW = "2026-11-23T09:00:00Z"


def _section(title: str) -> str:
    start = FORMAT.index(f"### {title}\n")
    end = re.compile(r"\n##+ ").search(FORMAT, start + 4)
    return FORMAT[start:end.start() if end else len(FORMAT)]


DOC = _section("Patterns and formats")
FIELDS_YAML: str = re.findall(r"```yaml\n(.*?)```", DOC, re.S)[0]
REFUSALS: list[str] = re.findall(r"```text\n(.*?)```", DOC, re.S)[0].splitlines()
NAMES = re.findall(r"^  (\w+):$", FIELDS_YAML, re.M)

PROCESS = ("kind: process\nid: deal\nname: Deal\n" + FIELDS_YAML + """\
stages:
  - id: edit
    kind: task
    start: true
    assignee: initiator
    fields:
      optional: [NAMES]
    results:
      done: finish
  - id: finish
    kind: end
""").replace("NAMES]", ", ".join(NAMES) + "]")


class Cli:
    def __init__(self, tmp_path: Path, text: str = PROCESS) -> None:
        procs = tmp_path / "processes"
        procs.mkdir()
        (procs / "deal.yaml").write_text(text, encoding="utf-8")
        (procs / "org.yaml").write_text(
            (ROOT / "processes" / "org.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        self.db = tmp_path / "flowctl.db"
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": str(self.db), "FLOWCTL_PROCESSES": str(procs), "FLOWCTL_NOW": NOW,
            "FLOWCTL_ORG": None, "FLOWCTL_USER": "alice", "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = invoke(list(args), env=self.env)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result


BAD = {
    "deal_code": "ab-1234",
    "phone": "not a phone",
    "email": "bob@",
    "website": "ftp://example.com",
}
BAD_DATES = ["2026-11-20", "2028-01-01"]


def test_the_docs_example_lints_clean(tmp_path: Path) -> None:
    path = tmp_path / "deal.yaml"
    path.write_text(PROCESS, encoding="utf-8")
    result = api.lint_paths([str(path)], org=str(ROOT / "processes" / "org.yaml"))
    assert [d.format() for d in result.diagnostics] == []


def test_refusals_are_exactly_the_docs_and_write_nothing(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    given = [f"{k}={v}" for k, v in BAD.items()] + [f"close_date={d}" for d in BAD_DATES]
    assert len(given) == len(REFUSALS)
    for value, refusal in zip(given, REFUSALS, strict=True):
        r = cli("start", "deal", "--set", value, code=1)
        assert (r.stdout, r.stderr.splitlines()) == ("", [refusal])
        assert not cli.db.exists()  # a refused first start leaves no database


def test_good_values_are_kept(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("start", "deal", "--set", "deal_code=AB-1234", "--set", "phone=+7 495 123-45-67",
        "--set", "email=bob@example.com", "--set", "website=https://example.com/deals?id=4",
        "--set", "close_date=2026-11-23")
    card = json.loads(cli("show", "deal-1", "--json").stdout)["instance"]
    assert card["record"] == {
        "deal_code": "AB-1234", "phone": "+7 495 123-45-67", "email": "bob@example.com",
        "website": "https://example.com/deals?id=4", "close_date": "2026-11-23",
    }


def test_a_refused_advance_writes_nothing(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("start", "deal", "--set", "phone=+7 495 123-45-67")
    before = cli("journal", "deal-1", "--json").stdout
    r = cli("advance", "deal-1", "-r", "done", "--set", "phone=12", "--set",
            "email=bob@example.com", code=1)
    assert r.stderr.startswith("flowctl: error: field 'phone' must be a phone number")
    assert r.stderr.rstrip().endswith("(format: phone); got '12'")
    assert cli("journal", "deal-1", "--json").stdout == before


def _process(text: str) -> Any:
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return build_process(data)


def _start(text: str, values: dict[str, Any], now: datetime) -> engine.Instance:
    return engine.start(_process(text), Start(values), Context("alice", ORG, now),
                        instance_id="d-1", digest="d" * 64).instance


@pytest.mark.parametrize(("fmt", "good", "bad"), [
    ("email", ["a@b.co", "ivan.petrov+crm@mail.example.ru"],
     ["a@b", "a b@c.de", "@c.de", "a@@c.de", "a@c..de", "a@.de"]),
    ("phone", ["+7 495 123-45-67", "(495) 123 4567", "4951234567", "+1.202.555.0143"],
     ["123456", "1234567890123456", "+7 495 CALL-NOW", "not a phone", "++7 495 123 45 67"]),
    ("url", ["https://example.com", "http://localhost:8080/a?b=c"],
     ["ftp://example.com", "https://", "example.com", "https://exa mple.com", "javascript:x"]),
    ("date", ["2026-02-28", "2028-02-29"], ["2026-02-29", "28.02.2026", "2026-2-28"]),
])
def test_formats(fmt: str, good: list[str], bad: list[str]) -> None:
    text = f"""\
kind: process
id: f
name: F
fields:
  value:
    type: string
    format: {fmt}
stages:
  - id: s
    kind: task
    start: true
    assignee: initiator
    fields:
      optional: [value]
    results:
      done: e
  - id: e
    kind: end
"""
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    for value in good:
        assert _start(text, {"value": value}, now).record == {"value": value}
    for value in bad:
        with pytest.raises(RuleBroken) as err:
            _start(text, {"value": value}, now)
        assert (err.value.field, err.value.rule, err.value.value) == ("value", "format", value)


DATES = """\
kind: process
id: d
name: D
calendar:
  timezone: Asia/Vladivostok
fields:
  close_date:
    type: date
    minimum: today
    maximum: today+1mo
  call_at:
    type: datetime
    minimum: now+2h
    maximum: "2027-01-01T00:00:00Z"
stages:
  - id: s
    kind: task
    start: true
    assignee: initiator
    fields:
      optional: [close_date, call_at]
    results:
      done: e
  - id: e
    kind: end
"""


def test_today_is_the_date_in_the_calendars_time_zone() -> None:
    # 31 January 20:00 UTC is already 1 February in Vladivostok (UTC+10)
    now = datetime(2027, 1, 31, 20, 0, tzinfo=UTC)
    with pytest.raises(RuleBroken) as err:
        _start(DATES, {"close_date": "2027-01-31"}, now)
    assert str(err.value) == ("field 'close_date' must be on or after 2027-02-01 (today)"
                              " (minimum); got '2027-01-31'")
    # today+1mo from 1 February is 1 March
    assert _start(DATES, {"close_date": "2027-03-01"}, now).record == {"close_date": "2027-03-01"}
    with pytest.raises(RuleBroken) as err:
        _start(DATES, {"close_date": "2027-03-02"}, now)
    assert (err.value.rule, err.value.value) == ("maximum", "2027-03-02")


def test_datetime_limits_relative_to_now_and_fixed() -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with pytest.raises(RuleBroken) as err:
        _start(DATES, {"call_at": "2026-11-23T10:59:00Z"}, now)
    assert str(err.value) == ("field 'call_at' must be on or after 2026-11-23T11:00:00Z (now+2h)"
                              " (minimum); got '2026-11-23T10:59:00Z'")
    assert _start(DATES, {"call_at": "2026-11-23T11:00:00Z"}, now).record == {
        "call_at": "2026-11-23T11:00:00Z"}
    with pytest.raises(RuleBroken) as err:
        _start(DATES, {"call_at": "2027-01-01T00:00:01Z"}, now)
    assert str(err.value) == ("field 'call_at' must be on or before 2027-01-01T00:00:00Z"
                              " (maximum); got '2027-01-01T00:00:01Z'")


def test_a_pattern_matches_the_whole_value() -> None:
    text = PROCESS
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    with pytest.raises(RuleBroken) as err:
        _start(text, {"deal_code": "XAB-1234"}, now)
    assert (err.value.field, err.value.rule) == ("deal_code", "pattern")
    with pytest.raises(RuleBroken):
        _start(text, {"deal_code": "AB-12345"}, now)


DEFAULTS = """\
kind: process
id: d
name: D
calendar:
  timezone: Asia/Vladivostok
fields:
  opened_on:
    type: date
    minimum: today
    default: now
  follow_up:
    type: date
    minimum: today
    default: "2020-01-01"
  phone:
    type: string
    format: phone
stages:
  - id: s
    kind: task
    start: true
    assignee: initiator
    fields:
      optional: [follow_up]
    results:
      done: e
  - id: e
    kind: end
"""


def test_defaults_and_set_values_keep_the_date_limits() -> None:
    # 20:00 UTC on 31 January is 1 February in Vladivostok: `now` is that date
    now = datetime(2027, 1, 31, 20, 0, tzinfo=UTC)
    inst = _start(DEFAULTS, {"follow_up": "2027-02-03"}, now)
    assert inst.record == {"opened_on": "2027-02-01", "follow_up": "2027-02-03"}
    with pytest.raises(RuleBroken) as err:
        _start(DEFAULTS, {}, now)
    assert str(err.value) == ("field 'follow_up' must be on or after 2027-02-01 (today)"
                              " (minimum); got '2020-01-01'")


def test_lint_refuses_a_literal_that_breaks_its_fields_format(tmp_path: Path) -> None:
    text = DEFAULTS.replace('    format: phone\n', '    format: phone\n    default: "12"\n')
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    got = [d.format() for d in api.lint_paths(
        [str(path)], org=str(ROOT / "processes" / "org.yaml")).diagnostics]
    line = text.splitlines().index('    default: "12"') + 1
    assert got == [
        f"{path}:{line}:14: FL271 the default of field 'phone': field 'phone' must be a phone"
        " number: 7 to 15 digits, an optional leading +, spaces, dashes, dots and parentheses,"
        " as in +7 495 123-45-67 (format: phone); '12' is not"]
