"""``typer`` for command declarations, imported only when typer itself runs.

Command modules declare their parameters the typer way::

    if TYPE_CHECKING:
        import typer
    else:
        from flowctl.cli.declare import typer

    def advance(
        result: Annotated[str, typer.Option("--result", "-r", help="...")],
        as_user: Annotated[str | None, opt.as_user()] = None,
    ) -> None: ...

With ``from __future__ import annotations`` those annotations are strings
that only typer evaluates, when it builds the app (for ``--help``, and for
the command lines ``flowctl.cli.fast`` leaves to it). Until then ``typer``
here is a stand-in that imports the real module on first use, so a command
run through the fast path never pays typer's and click's imports (~45 ms).
Shared options are functions (``flowctl.cli.run_options``) for the same
reason: a module-level ``Annotated[..., typer.Option(...)]`` alias would be
evaluated, and typer imported, as soon as its module is.
"""

from __future__ import annotations

from typing import Any


class _LazyTyper:
    """Attribute access imports typer and returns its attribute."""

    def __getattr__(self, name: str) -> Any:
        import typer

        return getattr(typer, name)


typer = _LazyTyper()
