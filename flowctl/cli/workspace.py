"""``flowctl init`` and ``flowctl config``: make a workspace, and show what it resolves to."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from flowctl.api import identity, workspace
from flowctl.cli import options as opt
from flowctl.cli.output import echo, handle_errors


def init(
    folder: Annotated[str, typer.Argument(
        metavar="[DIR]", help="The folder to make a workspace of (default: this one).",
        show_default=False,
    )] = ".",
) -> None:
    """Make a new workspace here: flowctl.toml, processes/ with an example process, org.yaml.

    Beside them, scenarios/ with the example's scenario tests (`flowctl
    test`). The example lints clean at once, and you are its org directory's admin
    (your login name as the user id). Nothing that exists is overwritten: if
    any of the files is there, nothing is written.

    Examples:

        flowctl init && flowctl lint

        flowctl init approvals && cd approvals && flowctl config
    """
    with handle_errors():
        me = identity.login_name() or "admin"
        written = workspace.init(folder, me)
        for path in written:
            echo(f"wrote {path}")
        user = workspace.login_id(me)
        # you are your login name (identity = "login"); as the admin you may act
        # for sam, journalled as by you
        as_me = "" if user == me else f" --as {user}"
        example = workspace.EXAMPLE_ID
        echo("")
        echo("next:")
        if os.path.abspath(folder) != os.getcwd():
            echo(f"  cd {folder}")
        for line in ("flowctl lint",
                     "flowctl test",
                     f"flowctl start {example} --as sam --set item=Laptop --set amount=1200",
                     f"flowctl advance {example}-1 --as sam --result submit",
                     f"flowctl inbox{as_me}",
                     f"flowctl advance {example}-1{as_me} --result approve"):
            echo(f"  {line}")


def config(
    processes: Annotated[str | None, opt.processes()] = None,
    org: Annotated[str | None, opt.org()] = None,
    db: Annotated[str | None, opt.db()] = None,
    json_out: Annotated[bool, opt.json_out()] = False,
) -> None:
    """Show the processes, org directory, store and identity policy used here, and their source.

    Each is taken from its flag, else its environment variable, else the
    workspace file (flowctl.toml, or [tool.flowctl] in pyproject.toml, found
    in this folder or above), else the default. `flowctl config` with a flag
    shows what a command given that flag would use. The identity policy
    (identity = "login", the default, or "trust") comes from the workspace
    file only.

    Examples:

        flowctl config

        flowctl config --json

        FLOWCTL_DB=/srv/flowctl/team.db flowctl config
    """
    with handle_errors():
        ws = workspace.resolve(processes=processes, org=org, db=db)
        rows = ws.settings()
        if json_out:
            echo(json.dumps({
                "workspace": ws.file,
                "root": ws.root,
                **{name: {"value": workspace.shown(s), "source": s.source,
                          "exists": workspace.exists(s)}
                   for name, s in rows.items()},
                "identity": {"value": ws.identity.value, "source": ws.identity.source,
                             "meaning": workspace.IDENTITY_POLICIES[ws.identity.value]},
            }, indent=2, ensure_ascii=False))
            return
        echo(f"workspace  {ws.file or 'none (no flowctl.toml here or above; defaults apply)'}")
        width = max(len(workspace.shown(s)) for s in [*rows.values(), ws.identity])
        for name, s in rows.items():
            missing = "  [does not exist]" if workspace.exists(s) is False else ""
            echo(f"{name:<10} {workspace.shown(s):<{width}}  from {s.source}{missing}")
        policy = ws.identity
        echo(f"{'identity':<10} {policy.value:<{width}}  from {policy.source}: "
             f"{workspace.IDENTITY_POLICIES[policy.value]}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("config")(config)
