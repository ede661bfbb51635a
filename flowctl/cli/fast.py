"""Run a well-formed command line without building the typer app.

Building the app costs more than most commands: importing typer and click
(~45 ms) and converting every command's signature. So ``flowctl <command>``
first tries this path: the commands' parameters, taken from the typer app
itself and kept in ``flowctl/cli/spec_data.py`` (generated: ``python -m
flowctl.cli.fast``; a test fails when it is stale), parse the command line
here, and the command's function is called with exactly the values typer
would pass it (a test compares the two on many command lines).

Only plain, valid command lines take this path. Anything else goes to typer
unchanged, so help, usage errors and their wording stay typer's: ``-h`` or
``--help`` anywhere, an unknown option, a missing or doubled value, a value
that starts with ``-``, a bad number or choice, a missing or extra argument,
short options run together, and every command of a group that has options
of its own (``flowctl notifications``).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypedDict

INT = re.compile(r"[0-9]+\Z")
FLOAT = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")


class ParamSpec(TypedDict):
    """One parameter of a command, as typer declares it to click (stored without the
    keys whose value is the one in ``DEFAULTS``)."""

    name: str  # the Python parameter
    opts: list[str]  # option names; [] for an argument
    secondary: list[str]  # a flag's "off" names (--no-x)
    flag: bool
    multiple: bool  # an option given several times, or an argument of any count
    required: bool
    type: str  # str, int, float, choice
    choices: list[str]  # for choice; matched ignoring case unless case_sensitive
    case_sensitive: bool
    enum: str  # "module:Class" the choice converts to, or ""
    min: float | None


DEFAULTS: dict[str, Any] = {
    "opts": [], "secondary": [], "flag": False, "multiple": False, "required": False,
    "type": "str", "choices": [], "case_sensitive": True, "enum": "", "min": None,
}


class CommandSpec(TypedDict):
    module: str
    function: str
    params: list[dict[str, Any]]  # ParamSpec without its default values


class _Refuse(Exception):
    """This command line is not for the fast path: typer takes it."""


# ---------------------------------------------------------------- running


def root_help(args: list[str]) -> bool:
    """Print ``flowctl --help`` as typer would, from the generated text (True), when
    the terminal is wide enough for that text to be exactly what typer prints."""
    if args not in (["--help"], ["-h"]) or _columns() < HELP_WIDTH:
        return False
    from flowctl.cli.spec_data import ROOT_HELP

    sys.stdout.write(ROOT_HELP)
    return True


HELP_WIDTH = 80  # click wraps help to min(terminal columns, 80)


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` (which click asks) sees it."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else HELP_WIDTH


def run(args: list[str]) -> bool:
    """Run ``flowctl <args>`` if it is a plain, valid command line; False if typer must."""
    from flowctl.cli.spec_data import COMMANDS

    found = _find(COMMANDS, args)
    if found is None:
        return False
    spec, rest = found
    try:
        kwargs = parse(params(spec), rest)
    except _Refuse:
        return False
    function: Callable[..., Any] = getattr(importlib.import_module(spec["module"]),
                                           spec["function"])
    function(**kwargs)
    return True


def module_of(args: list[str]) -> str | None:
    """The module (in flowctl.cli) that registers the command ``args`` names, if known."""
    from flowctl.cli.spec_data import COMMANDS

    found = _find(COMMANDS, args)
    return found[0]["module"].rpartition(".")[2] if found else None


def _find(commands: dict[str, CommandSpec],
          args: list[str]) -> tuple[CommandSpec, list[str]] | None:
    if len(args) >= 2 and f"{args[0]} {args[1]}" in commands:
        return commands[f"{args[0]} {args[1]}"], args[2:]
    if args and args[0] in commands:
        return commands[args[0]], args[1:]
    return None


def params(spec: CommandSpec) -> list[ParamSpec]:
    """The command's parameters with every key filled in."""
    return [{**DEFAULTS, **p} for p in spec["params"]]  # type: ignore[typeddict-item]


def parse(spec: list[ParamSpec], args: list[str]) -> dict[str, Any]:
    """The keyword arguments typer would call the command with; ``_Refuse`` if unsure."""
    by_name: dict[str, tuple[ParamSpec, bool]] = {}
    for p in spec:
        by_name.update(dict.fromkeys(p["opts"], (p, True)))
        by_name.update(dict.fromkeys(p["secondary"], (p, False)))
    values: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional.extend(args[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            name, eq, attached = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            if name not in by_name:
                raise _Refuse
            p, on = by_name[name]
            if p["flag"]:
                if eq or p["name"] in values:
                    raise _Refuse
                values[p["name"]] = on
            else:
                if not eq:
                    i += 1
                    if i == len(args):
                        raise _Refuse
                    attached = args[i]
                _set(values, p, _convert(p, attached))
        else:
            positional.append(arg)
        i += 1
    _arguments(spec, positional, values)
    for p in spec:
        if p["required"] and p["name"] not in values:
            raise _Refuse
    return values


def _set(values: dict[str, Any], p: ParamSpec, value: Any) -> None:
    if p["multiple"]:
        values.setdefault(p["name"], []).append(value)
    elif p["name"] in values:
        raise _Refuse  # given twice: leave the rule to typer
    else:
        values[p["name"]] = value


def _arguments(spec: list[ParamSpec], positional: list[str], values: dict[str, Any]) -> None:
    for p in spec:
        if p["opts"]:
            continue
        if p["multiple"]:
            if positional:
                values[p["name"]] = [_convert(p, v) for v in positional]
            positional = []
        elif positional:
            values[p["name"]] = _convert(p, positional.pop(0))
    if positional:
        raise _Refuse


def _convert(p: ParamSpec, text: str) -> Any:
    if text.startswith("-") and text != "-":
        raise _Refuse  # an option, or a negative number: typer decides
    kind = p["type"]
    if kind == "str":
        return text
    if kind == "choice":
        return _choice(p, text)
    number: float
    if kind == "int" and INT.match(text):
        number = int(text)
    elif kind == "float" and FLOAT.match(text):
        number = float(text)
    else:
        raise _Refuse
    if p["min"] is not None and number < p["min"]:
        raise _Refuse
    return number


def _choice(p: ParamSpec, text: str) -> Any:
    def same(a: str, b: str) -> bool:
        return a == b if p["case_sensitive"] else a.casefold() == b.casefold()

    chosen = next((c for c in p["choices"] if same(c, text)), None)
    if chosen is None:
        raise _Refuse
    if not p["enum"]:
        return chosen
    module, _, name = p["enum"].partition(":")
    return getattr(importlib.import_module(module), name)(chosen)


# ---------------------------------------------------------------- the spec


def build_root_help() -> str:
    """``flowctl --help`` as typer prints it on a terminal at least 80 columns wide
    (in a fresh process: typer's test runner wraps help differently)."""
    import subprocess

    code = ("from flowctl.cli.app import _build_app; "
            "_build_app()(args=['--help'], prog_name='flowctl')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": str(HELP_WIDTH)}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"flowctl --help exited {done.returncode}: {done.stderr}")
    return done.stdout


def build_spec() -> dict[str, CommandSpec]:
    """Every command's parameters, read from the typer app (imports typer)."""
    import typer.main

    from flowctl.cli.app import _build_app

    app = _build_app()
    root = typer.main.get_command(app)
    out: dict[str, CommandSpec] = {}
    for info in app.registered_commands:
        out[info.name] = _command_spec(info.callback, root.commands[info.name])  # type: ignore[attr-defined]
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub.registered_callback is not None:
            continue  # a group with options of its own: typer parses it
        click_group = root.commands[group.name]  # type: ignore[attr-defined]
        for info in sub.registered_commands:
            out[f"{group.name} {info.name}"] = _command_spec(
                info.callback, click_group.commands[info.name]
            )
    return dict(sorted(out.items()))


def _command_spec(function: Any, command: Any) -> CommandSpec:
    import typing

    hints = typing.get_type_hints(function)
    compact = []
    for param in command.params:
        full = _param_spec(param, hints.get(param.name))
        compact.append({k: v for k, v in full.items() if k == "name" or v != DEFAULTS[k]})
    return {"module": function.__module__, "function": function.__name__, "params": compact}


def _param_spec(param: Any, hint: Any) -> dict[str, Any]:
    """From a click parameter (typer's own copy of click, or click: read by duck typing)."""
    unsupported = (param.envvar or getattr(param, "count", False) or param.callback is not None
                   or param.nargs not in (1, -1))
    if unsupported:
        raise ValueError(f"the fast path cannot parse parameter {param.name!r}: teach it")
    is_option = param.param_type_name == "option"
    spec: dict[str, Any] = {
        "name": param.name, "opts": list(param.opts) if is_option else [],
        "secondary": list(param.secondary_opts) if is_option else [],
        "flag": bool(is_option and param.is_flag),
        "multiple": bool(param.multiple or param.nargs == -1),
        "required": bool(param.required), "type": "str", "choices": [],
        "case_sensitive": True, "enum": "", "min": None,
    }
    ptype = param.type
    kind = next((TYPE_CLASSES[c.__name__] for c in type(ptype).__mro__
                 if c.__name__ in TYPE_CLASSES), None)
    if spec["flag"]:
        spec["type"] = "bool"
    elif kind == "choice":
        spec.update(type=kind, choices=[str(c) for c in ptype.choices],
                    case_sensitive=ptype.case_sensitive, enum=_enum_of(hint))
    elif kind in ("int", "float"):
        if getattr(ptype, "max", None) is not None:
            raise ValueError(f"the fast path has no maximum for {param.name!r}: teach it")
        spec.update(type=kind, min=getattr(ptype, "min", None))
    elif kind != "str":
        raise ValueError(f"the fast path cannot convert {param.name!r} ({ptype!r}): teach it")
    return spec


# click's parameter types (by class name: typer may bring its own copy of click)
TYPE_CLASSES = {"StringParamType": "str", "Choice": "choice", "TyperChoice": "choice",
                "IntParamType": "int",
                "FloatParamType": "float"}


def _enum_of(hint: Any) -> str:
    import enum
    import typing

    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return f"{candidate.__module__}:{candidate.__qualname__}"
    return ""


def render_spec(spec: dict[str, CommandSpec], root_help: str) -> str:
    lines = [
        '"""Generated by `python -m flowctl.cli.fast` from the typer app: do not edit."""',
        "",
        "# ruff: noqa: E501",
        "",
        "from __future__ import annotations",
        "",
        "from typing import TYPE_CHECKING",
        "",
        "if TYPE_CHECKING:",
        "    from flowctl.cli.fast import CommandSpec",
        "",
        "COMMANDS: dict[str, CommandSpec] = {",
    ]
    for name, command in spec.items():
        lines.append(f"    {name!r}: {{'module': {command['module']!r}, "
                     f"'function': {command['function']!r}, 'params': [")
        lines += [f"        {p!r}," for p in command["params"]]
        lines.append("    ]},")
    lines.append("}")
    lines += ["", "ROOT_HELP = (",
              *(f"    {line!r}" for line in root_help.splitlines(keepends=True)), ")"]
    return "\n".join(lines) + "\n"


def spec_file() -> str:
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "spec_data.py")


def main() -> None:
    with open(spec_file(), "w", encoding="utf-8") as fh:
        fh.write(render_spec(build_spec(), build_root_help()))
    print(f"wrote {spec_file()}")


if __name__ == "__main__":
    main()
