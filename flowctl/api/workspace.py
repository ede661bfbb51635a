"""The workspace: where the processes, the org directory and the store are.

Every command resolves these three the same way, first found wins:

1. its flag (``--processes``, ``--org``, ``--db``);
2. the environment (``FLOWCTL_PROCESSES``, ``FLOWCTL_ORG``, ``FLOWCTL_DB``);
3. the workspace file: ``flowctl.toml``, or a ``[tool.flowctl]`` table in
   ``pyproject.toml``, found by walking up from the current folder (as git
   finds ``.git`` and ruff its configuration); its paths are relative to the
   folder that holds it;
4. the defaults, relative to the workspace folder (or the current folder when
   there is no workspace file): ``processes/``, ``<processes>/org.yaml``,
   ``.flowctl/flowctl.db``.

The workspace file also says how the acting user is established (``identity``:
``"login"``, the default, or ``"trust"``; see :mod:`flowctl.api.identity`). It
comes from the workspace file only: no flag or variable sets a policy.

``flowctl config`` prints what :func:`resolve` found and where each value came
from; ``flowctl init`` writes a new workspace (:func:`init`).
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from msgspec import Struct

from flowctl.errors import UsageError
from flowctl.store.urls import display_url, is_url

FILE_NAME = "flowctl.toml"
PYPROJECT = "pyproject.toml"
KEYS = {
    "processes": "the folder of process definitions",
    "org": "the org directory (a YAML file)",
    "store": "the store: a SQLite file, or a postgresql:// URL of a team's server",
    "identity": 'how the acting user is established: "login" or "trust"',
    "scenarios": "the folder of scenario tests, for flowctl test",
}
IDENTITY_LOGIN = "login"  # the operating-system login; --as only for admins
IDENTITY_TRUST = "trust"  # anyone may say --as (a demo, a test, a single-user machine)
IDENTITY_POLICIES = {
    IDENTITY_LOGIN: "you are your operating-system login name; only admins may act "
                    "for someone else with --as",
    IDENTITY_TRUST: "anyone may say who they are with --as or FLOWCTL_USER",
}
FLAGS = {"processes": "--processes", "org": "--org", "store": "--db", "scenarios": "PATHS"}
ENV = {"processes": "FLOWCTL_PROCESSES", "org": "FLOWCTL_ORG", "store": "FLOWCTL_DB",
       "scenarios": "FLOWCTL_SCENARIOS"}
DEFAULT_PROCESSES = "processes"
DEFAULT_SCENARIOS = "scenarios"
DEFAULT_STORE = os.path.join(".flowctl", "flowctl.db")
ORG_NAMES = ("org.yaml", "org.yml")


class WorkspaceError(UsageError):
    """The workspace file cannot be read or holds a key or value flowctl does not know."""


class Setting(Struct, frozen=True):
    value: str  # a path, usable from the current folder
    source: str  # where it came from: "--db", "$FLOWCTL_DB", "flowctl.toml", "default"
    explicit: bool  # set by a flag, the environment or the workspace file


class Workspace(Struct, frozen=True):
    root: str  # the folder of the workspace file, else the current folder
    file: str | None  # the workspace file, when one was found
    processes: Setting
    org: Setting
    store: Setting
    # "login" or "trust": from the workspace file only (a variable is no policy)
    identity: Setting = Setting(IDENTITY_LOGIN, "default", False)
    # the scenarios of `flowctl test` (not a setting of the other commands)
    scenarios: Setting = Setting(DEFAULT_SCENARIOS, "default", False)

    def settings(self) -> dict[str, Setting]:
        """The paths (``identity`` is not a path: see :attr:`identity`)."""
        return {"processes": self.processes, "org": self.org, "store": self.store}


def _shown(path: str) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute."""
    absolute = os.path.abspath(path)
    here = os.getcwd()
    if absolute == here or absolute.startswith(here.rstrip(os.sep) + os.sep):
        return os.path.relpath(absolute, here)
    return absolute


def find_file(start: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The nearest workspace file at or above ``start`` and its flowctl table.

    A ``pyproject.toml`` counts only when it has a ``[tool.flowctl]`` table; a
    ``flowctl.toml`` beside it wins. ``WorkspaceError`` if the file is not TOML.
    """
    folder = os.path.abspath(start or os.getcwd())
    while True:
        own = os.path.join(folder, FILE_NAME)
        if os.path.isfile(own):
            return own, _read(own, tool_table=False)
        project = os.path.join(folder, PYPROJECT)
        if os.path.isfile(project):
            table = _read(project, tool_table=True)
            if table is not None:
                return project, table
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _read(path: str, *, tool_table: bool) -> Any:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise WorkspaceError(f"cannot read the workspace file {_shown(path)}: "
                             f"{exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        if tool_table:  # not ours to judge, unless it names flowctl
            return None
        raise WorkspaceError(f"{_shown(path)} is not valid TOML: {exc}",
                             hint="fix it, or delete it to use the defaults") from None
    if not tool_table:
        return data
    tool = data.get("tool")
    return tool.get("flowctl") if isinstance(tool, dict) else None


def _check(path: str, table: Any) -> dict[str, str]:
    where = _shown(path) + (" [tool.flowctl]" if path.endswith(PYPROJECT) else "")
    if not isinstance(table, dict):
        raise WorkspaceError(f"{where}: the flowctl settings must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        allowed = "; ".join(f"{k} ({what})" for k, what in KEYS.items())
        raise WorkspaceError(
            f"{where}: unknown setting '{unknown[0]}'; the settings are: {allowed}",
            hint="remove it, or check its spelling",
        )
    out: dict[str, str] = {}
    for key, value in table.items():
        if key == "identity":
            if value not in IDENTITY_POLICIES:
                allowed = "; ".join(f'"{k}" ({what})' for k, what in IDENTITY_POLICIES.items())
                raise WorkspaceError(
                    f"{where}: 'identity' must be one of: {allowed}; got {value!r}",
                    hint=f'e.g. identity = "{IDENTITY_LOGIN}"',
                )
            out[key] = value
            continue
        if not isinstance(value, str) or not value.strip():
            raise WorkspaceError(
                f"{where}: '{key}' must be a non-empty string (a path); "
                f"got {type(value).__name__} {value!r}",
                hint=f'e.g. {key} = "{DEFAULT_PROCESSES if key == "processes" else "..."}"',
            )
        out[key] = value
    return out


def resolve(
    *,
    processes: str | None = None,
    org: str | None = None,
    db: str | None = None,
    start: str | None = None,
    scenarios: str | None = None,
) -> Workspace:
    """Where the processes, the org directory and the store are (see the module doc)."""
    found = find_file(start)
    file_values: dict[str, str] = {}
    root = os.path.abspath(start or os.getcwd())
    file_path: str | None = None
    if found is not None:
        file_path, table = found
        root = os.path.dirname(file_path)
        file_values = _check(file_path, table)
    flags = {"processes": processes, "org": org, "store": db, "scenarios": scenarios}
    file_label = _shown(file_path) if file_path else ""

    def pick(key: str) -> Setting | None:
        flag = flags[key]
        if flag:
            return Setting(flag, FLAGS[key], True)
        env = os.environ.get(ENV[key])
        if env:
            return Setting(env, f"${ENV[key]}", True)
        if key in file_values:
            value = file_values[key]
            if key == "store" and is_url(value):  # a server, not a path
                return Setting(value, file_label, True)
            return Setting(_shown(os.path.join(root, value)), file_label, True)
        return None

    procs = pick("processes") or Setting(
        _shown(os.path.join(root, DEFAULT_PROCESSES)), "default", False)
    org_setting = pick("org") or Setting(_default_org(procs.value), "default: in the processes "
                                         "folder", False)
    store = pick("store") or Setting(_shown(os.path.join(root, DEFAULT_STORE)), "default", False)
    policy = (Setting(file_values["identity"], file_label, True) if "identity" in file_values
              else Setting(IDENTITY_LOGIN, "default", False))
    tests = pick("scenarios") or Setting(
        _shown(os.path.join(root, DEFAULT_SCENARIOS)), "default", False)
    return Workspace(root=_shown(root), file=_shown(file_path) if file_path else None,
                     processes=procs, org=org_setting, store=store, identity=policy,
                     scenarios=tests)


def _default_org(processes: str) -> str:
    for name in ORG_NAMES:
        candidate = os.path.join(processes, name)
        if os.path.isfile(candidate):
            return candidate
    return os.path.join(processes, ORG_NAMES[0])


def shown(setting: Setting) -> str:
    """The setting's value as flowctl shows it: a store's URL without its password."""
    return display_url(setting.value) if is_url(setting.value) else setting.value


def exists(setting: Setting) -> bool | None:
    """Whether the path exists (None for a server's URL: not a path to look at)."""
    return None if is_url(setting.value) else os.path.exists(setting.value)


def describe(setting: Setting) -> str:
    """``.flowctl/flowctl.db (from $FLOWCTL_DB)``: a path (or a server's URL,
    without its password) and where it came from."""
    return f"{shown(setting)} (from {setting.source})"


# ---------------------------------------------------------------- flowctl init

WORKSPACE_TEXT = """\
# The flowctl workspace: every flowctl command run in this folder or below it
# finds this file and takes these settings (a flag or an environment variable
# still wins: --processes / FLOWCTL_PROCESSES, --org / FLOWCTL_ORG,
# --db / FLOWCTL_DB). Paths are relative to this file's folder.
# `flowctl config` shows what each command uses and where it came from.
processes = "processes"
org = "processes/org.yaml"
store = ".flowctl/flowctl.db"
# Who is acting: "login" = your operating-system login name is your user id in
# the org directory, and only users with the admin role may act for someone
# else (--as USER, journalled with both names). "trust" = anyone may say who
# they are with --as or FLOWCTL_USER: only for a demo or a single-user machine.
identity = "login"
"""

EXAMPLE_ID = "purchase-request"

EXAMPLE_TEXT = """\
# A small example: edit it, or copy it to start a process of your own.
# `flowctl schema process` prints the JSON Schema that editors can check against.
kind: process
id: purchase-request
name: Purchase request
description: >-
  Someone asks to buy something; their manager approves it, or sends it back
  with a reason.
subject: purchase
fields:
  item:
    type: string
    label: Item
  amount:
    type: number
    label: Amount
    minimum: 0
  reason:
    type: text
    label: Reason for sending back
stages:
  - id: request
    kind: task
    start: true
    name: Describe the purchase
    assignee: initiator
    fields:
      required: [item, amount]
    results:
      submit: approval
      withdraw: withdrawn
  - id: approval
    kind: approval
    name: Approve the purchase
    approvers:
      - relation: manager
        of: initiator
    results:
      approve: approved
      reject:
        to: request
        fields:
          required: [reason]
  - id: approved
    kind: end
    name: Approved
  - id: withdrawn
    kind: end
    name: Withdrawn
    outcome: cancelled
"""

ORG_TEXT = """\
# The org directory: who works here, in which department, with which roles.
# `flowctl schema org` prints its JSON Schema.
kind: org
departments:
  - id: team
    name: Team
    head: {me}
users:
  - id: {me}
    name: {me}
    department: team
    roles: [admin]
  - id: sam
    name: Sam Example
    department: team
roles:
  - id: admin
    name: Process administrator
"""


SCENARIO_TEXT = """\
# Scenario tests of processes/purchase-request.yaml: `flowctl test` runs them in
# memory (nothing is written) and says which stages, results and branches no
# scenario took. `flowctl schema scenario` prints the format; docs/testing.md.
kind: scenario
process: purchase-request
scenarios:
  - name: sam's manager approves the purchase
    steps:
      - start: {{as: sam}}
        expect: {{stage: request, assignee: sam}}
      - act: {{as: sam, result: submit, fields: {{item: Laptop, amount: 1200}}}}
        expect: {{stage: approval, assignee: {me}}}
      - act: {{as: sam, result: approve}}
        refused: "an approval excludes its initiator"
      - act: {{as: {me}, result: approve}}
        expect: {{stage: approved, status: completed, outcome: completed}}

  - name: sent back with a reason, then withdrawn
    steps:
      - start: {{as: sam}}
      - act: {{as: sam, result: submit, fields: {{item: Chair, amount: 90}}}}
      - act: {{as: {me}, result: reject}}
        refused: reason
      - act: {{as: {me}, result: reject, fields: {{reason: "we have chairs"}}}}
        expect: {{stage: request, assignee: sam, fields: {{reason: "we have chairs"}}}}
      - act: {{as: sam, result: withdraw}}
        expect: {{stage: withdrawn, outcome: cancelled}}
"""


def login_id(login: str) -> str:
    """A user id (``a-z``, digits, ``-``) made from a login name."""
    out = "".join(c if ("a" <= c <= "z" or "0" <= c <= "9") else "-" for c in login.lower())
    out = "-".join(part for part in out.split("-") if part)
    if not out or not out[0].isalpha() or out == "sam":
        return "admin"
    return out


def init(folder: str, login: str) -> list[str]:
    """Write a new workspace into ``folder``: ``flowctl.toml``, ``processes/`` with
    one example process, ``processes/org.yaml`` (``login`` as its admin) and
    ``scenarios/`` with the example's scenario tests.

    Refuses, writing nothing, when any of these files exists. Returns the
    files written, as shown to the user.
    """
    me = login_id(login)
    files = {
        os.path.join(folder, FILE_NAME): WORKSPACE_TEXT,
        os.path.join(folder, DEFAULT_PROCESSES, f"{EXAMPLE_ID}.yaml"): EXAMPLE_TEXT,
        os.path.join(folder, DEFAULT_PROCESSES, ORG_NAMES[0]): ORG_TEXT.format(me=me),
        os.path.join(folder, DEFAULT_SCENARIOS, f"{EXAMPLE_ID}.yaml"):
            SCENARIO_TEXT.format(me=me),
    }
    existing = [_shown(p) for p in files if os.path.exists(p)]
    if existing:
        raise UsageError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "flowctl init writes a new workspace and overwrites nothing",
            hint="run it in an empty folder, or `flowctl init DIR` for a new one",
        )
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{_shown(folder)} is a file, not a folder",
                         hint="flowctl init DIR makes DIR a workspace")
    written: list[str] = []
    try:
        for path, text in files.items():
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(text)
            written.append(path)
    except OSError as exc:
        for path in written:
            os.unlink(path)
        raise UsageError(f"cannot write {_shown(exc.filename or folder)}: "
                         f"{exc.strerror or exc}") from None
    return [_shown(p) for p in written]
