"""Attachments of an instance: get one back byte for byte, list them."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from flowctl.api import instances
from flowctl.cli import options as opt
from flowctl.cli import views as fmt
from flowctl.cli.output import echo, echo_bytes, handle_errors
from flowctl.errors import FlowctlError, UsageError


def _write(path: str, content: bytes, *, force: bool) -> None:
    """Write ``content`` to ``path``; an existing file only with ``force``."""
    try:
        with open(path, "wb" if force else "xb") as fh:
            fh.write(content)
    except FileExistsError:
        raise FlowctlError(
            f"{path} exists; nothing was written (the attachment is not written over a file)",
            hint="add --force to replace it, or choose another path with -o",
        ) from None
    except IsADirectoryError:
        raise UsageError(f"-o {path} is a directory; give a file path") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def get(
    instance: Annotated[str, opt.instance()],
    name: Annotated[str, typer.Argument(metavar="NAME", help="The attachment's name.")],
    output: Annotated[
        str,
        typer.Option("--output", "-o", metavar="PATH",
                     help="Where to write it; `-` writes it to standard output."),
    ],
    version: Annotated[
        int | None,
        typer.Option("--version", metavar="N", min=1,
                     help="An earlier version (default: the latest).", show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace PATH if it exists.")
    ] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Write an attachment of the instance, byte for byte, to a file or standard output.

    The bytes are checked against their SHA-256 before they are written. An
    existing file is not replaced unless --force is given.

    Examples:

        flowctl attachment get contract-approval-4 signed-contract.pdf -o contract.pdf

        flowctl attachment get contract-approval-4 signed-contract.pdf --version 1 -o - | sha256sum
    """
    with handle_errors():
        row, content = instances.attachment(
            instance, name, version=version, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        )
        if output == "-":
            echo_bytes(content)
            return
        _write(output, content, force=force)
        where = os.path.abspath(output)
        echo(f"{instance}: wrote '{row.name}' version {row.version}"
             f" ({fmt.size_text(row.size)}, sha256 {row.sha256[:12]}) to {where}", err=True)


def list_command(
    instance: Annotated[str, opt.instance()],
    json_out: Annotated[bool, opt.json_out()] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """List the attachments of an instance: name, version, size, SHA-256, who, when.

    Examples:

        flowctl attachment list contract-approval-4

        flowctl attachment list contract-approval-4 --json
    """
    with handle_errors():
        card = instances.show(instance, as_user=as_user, db=db, org=org, processes_dir=processes)
        items = card.instance.attachments
        if json_out:
            echo(fmt.to_json([fmt.plain(a) for a in items]))
        elif not items:
            echo(f"{instance} has no attachments")
        else:
            for a in items:
                echo(fmt.attachment_line(a))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Attachments of an instance: get one back byte for byte, list them.\n\n"
        "`flowctl attach INSTANCE FILE` adds one.\n\n"
        "Examples:\n\n"
        "    flowctl attachment list contract-approval-4\n\n"
        "    flowctl attachment get contract-approval-4 signed-contract.pdf -o contract.pdf\n",
        rich_markup_mode=None,
    )
    group.command("get")(get)
    group.command("list")(list_command)
    app.add_typer(group, name="attachment")
