"""Run the real ``flowctl`` entry point (``flowctl.cli.app:main``) in-process.

``invoke(args, env=...)`` runs ``main(args)`` with standard input, output and
error captured and the environment changed for the call only (typer's
``CliRunner.isolation``), and returns typer's ``Result``: ``exit_code``,
``stdout``, ``stderr``, ``output`` and, for an escaped exception, ``exception``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from typer.testing import CliRunner, Result

from flowctl.cli import app as app_module


def invoke(
    args: Sequence[str],
    *,
    env: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
) -> Result:
    runner = CliRunner()
    exception: BaseException | None = None
    exc_info = None
    code = 0
    with runner.isolation(input=input, env=env) as (out, err, both):
        try:
            app_module.main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if code:
                exception = exc
        except Exception as exc:
            exception, code = exc, 1
            exc_info = sys.exc_info()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr, output = out.getvalue(), err.getvalue(), both.getvalue()
    return Result(runner=runner, stdout_bytes=stdout, stderr_bytes=stderr, output_bytes=output,
                  return_value=None, exit_code=code, exception=exception,
                  exc_info=exc_info)  # type: ignore[arg-type]


TRUST_WORKSPACE = 'identity = "trust"\n'


def trust_workspace(folder: object) -> None:
    """Make ``folder`` a workspace that believes --as and FLOWCTL_USER (identity =
    "trust"), as a test that acts as several people needs; the default, "login",
    believes only the operating-system login name."""
    import os

    with open(os.path.join(str(folder), "flowctl.toml"), "w", encoding="utf-8") as fh:
        fh.write(TRUST_WORKSPACE)
