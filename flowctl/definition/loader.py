"""Hardened YAML loading: untrusted bytes -> plain data, positions, diagnostics.

Definitions arrive in pull requests, so the loader never runs code, never
expands aliases, never recurses over the input and never raises: every
problem becomes a located :class:`~flowctl.diagnostics.Diagnostic` (1-based
line and column). The file is parsed once, as a stream of events from
ruamel.yaml's C parser (libyaml); plain data and the position index are built
from those events with an explicit stack. Plain scalars are typed with
ruamel's YAML 1.2 core-schema resolver, so ``no``, ``on`` and ``yes`` stay
strings; quoted and block scalars are always strings.

Codes (docs/loader-codes.md has examples and fixes):

======  ======================================================  ===========
code    problem                                                 parsing
======  ======================================================  ===========
FL001   file larger than MAX_BYTES (1 MiB)                      not parsed
FL002   not UTF-8, or a character YAML forbids (NUL, C0/C1       not parsed
        controls other than tab/LF/CR, DEL, U+FFFE, U+FFFF);
        a control character (but tab, LF) or bidi control in   continues
        a string, raw or written as an escape (``"\\e"``)
FL003   YAML syntax error                                       stops
FL004   duplicate mapping key (any depth)                       continues
FL005   anchor, alias or merge key ``<<`` (first one only)      continues
FL006   explicit tag (``!!binary``, ``!!python/...``, ``!x``)   continues
FL007   nesting deeper than MAX_DEPTH (64)                      stops
FL008   ``%YAML`` / ``%TAG`` (or any) directive                 not parsed
FL009   unquoted date or timestamp value                        continues
FL010   mapping key that is not a string                        continues
FL011   number that JSON cannot hold (.nan, .inf, 1e999,        continues
        an integer of more than 4300 digits) or that the engine
        cannot compare (an integer beyond 1.8e308)
FL012   empty file, or the top level is not one mapping         stops
FL013   file cannot be read (missing, a folder, no permission)  not parsed
FL014   more than MAX_PROBLEMS problems in one file             stops
FL015   more than MAX_NODES values in one file                  stops
======  ======================================================  ===========

Any of these makes ``Document.data`` None (and the position index empty):
the rest of the pipeline only ever sees data that loaded cleanly. ``text``
is kept whenever decoding worked, for source snippets.
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, Final, NoReturn

from flowctl.definition.document import Document, Positions
from flowctl.diagnostics import Diagnostic
from flowctl.model import Path
from flowctl.text import describe_char, find_unsafe

MAX_BYTES: Final = 1_048_576
MAX_DEPTH: Final = 64
MAX_NODES: Final = 100_000
MAX_PROBLEMS: Final = 50

_BOM: Final = b"\xef\xbb\xbf"
# YAML 1.2 c-printable is tab, LF, CR, 0x20-0x7E, 0x85, 0xA0-0xD7FF,
# 0xE000-0xFFFD and 0x10000 up; strict UTF-8 decoding already rules out
# surrogates, so these are what is left to refuse.
_FORBIDDEN: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
# blank and comment lines, then a line starting with '%': a directive
_DIRECTIVE: Final = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\r?\n)*(%[^\r\n]*)")
_CORE_TAG_PREFIX: Final = "tag:yaml.org,2002:"
_SHOWN_MAX: Final = 60
# the largest number the engine compares: a finite 64-bit float
_LARGEST: Final = sys.float_info.max

# mapping-frame key states (a key that is not a string is "dropped")
_EXPECT_KEY: Final = object()
_DROPPED: Final = "\x00dropped"  # never a real key: NUL is refused up front

_CONTROL_NAMES: Final = {0: "NUL", 0x7F: "DEL", 0xFFFE: "non-character", 0xFFFF: "non-character"}

# Set False to force ruamel's pure-Python parser (tests run both).
USE_C_PARSER = True


class _Stop(Exception):
    """Internal: a fatal problem was recorded; stop reading events."""


# ---------------------------------------------------------------- entry points


def load_file(path: str, display: str | None = None) -> Document:
    """Read and load ``path``; diagnostics name it as ``display`` (default: ``path``)."""
    shown = path if display is None else display
    data = _read(path, shown)
    if isinstance(data, Diagnostic):
        return Document(path=shown, diagnostics=[data])
    return load_bytes(data, shown)


def read_source(path: str, display: str) -> bytes | Diagnostic:
    """The bytes ``load_file`` would load, or the FL001/FL013 diagnostic it would report."""
    return _read(path, display)


def decode_source(data: bytes) -> str | None:
    """The text ``load_bytes`` keeps for ``data`` when it is within the size cap."""
    text = _decode(data, "")
    return text if isinstance(text, str) else None


def load_bytes(data: bytes, display: str) -> Document:
    """Load YAML bytes as a definition document shown to users as ``display``."""
    if len(data) > MAX_BYTES:
        return Document(path=display, diagnostics=[_too_large(display, len(data))])
    text = _decode(data, display)
    if isinstance(text, Diagnostic):
        return Document(path=display, diagnostics=[text])
    problem = _forbidden_char(text, display) or _directive(text, display)
    if problem is not None:
        return Document(path=display, text=text, diagnostics=[problem])
    builder = _Builder(display)
    builder.run(_events(text))
    _explain_tab_indent(builder.diagnostics, text)
    if builder.diagnostics:
        return Document(path=display, text=text, diagnostics=builder.diagnostics)
    return Document(path=display, text=text, data=builder.data, positions=builder.positions)


# ---------------------------------------------------------------- before parsing


def _read(path: str, shown: str) -> bytes | Diagnostic:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block open()
            return _diag(shown, 1, 1, "FL013", "cannot read: not a regular file")
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                return _diag(shown, 1, 1, "FL013", "cannot read: not a regular file")
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return _diag(shown, 1, 1, "FL013", f"cannot read the file: {reason.lower()}")
    if len(data) > MAX_BYTES:
        return _too_large(shown, max(info.st_size, len(data)))
    return data


def _too_large(shown: str, size: int) -> Diagnostic:
    return _diag(
        shown,
        1,
        1,
        "FL001",
        f"file is {size:,} bytes; the limit is {MAX_BYTES:,} bytes (1 MiB), because a "
        "definition is far smaller and parsing huge files costs time and memory; "
        "split it into several processes",
    )


def _decode(data: bytes, shown: str) -> str | Diagnostic:
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        line = data.count(b"\n", 0, offset) + 1
        before = data[max(line_start, skip) : offset].decode("utf-8", "replace")
        return _diag(
            shown,
            line,
            len(before) + 1,
            "FL002",
            f"invalid UTF-8: byte 0x{data[offset]:02x} at offset {offset}; definitions "
            "must be saved as UTF-8 (re-save the file with UTF-8 encoding)",
        )


def _forbidden_char(text: str, shown: str) -> Diagnostic | None:
    m = _FORBIDDEN.search(text)
    if m is None:
        return None
    code = ord(m.group())
    line, col = _line_col(text, m.start())
    name = _CONTROL_NAMES.get(code, "control character")
    return _diag(
        shown,
        line,
        col,
        "FL002",
        f"forbidden character U+{code:04X} ({name}): YAML allows no control characters "
        "except tab and line breaks; remove it",
    )


def _directive(text: str, shown: str) -> Diagnostic | None:
    m = _DIRECTIVE.match(text)
    if m is None:
        return None
    line, col = _line_col(text, m.start(1))
    return _diag(shown, line, col, "FL008", _directive_message(_clip(m.group(1).strip())))


def _directive_message(directive: str) -> str:
    return (
        f"directive {directive} is not allowed: every definition is read as YAML 1.2 "
        "(under %YAML 1.1, no/yes/on/off would turn into booleans); remove the line"
    )


# ---------------------------------------------------------------- parsing


def _events(text: str) -> Iterator[Any]:
    """Parse events of ``text``, from libyaml when available."""
    from ruamel.yaml.events import StreamEndEvent

    parser_class: Any = None
    if USE_C_PARSER:
        try:
            import ruamel.yaml.cyaml as cyaml
        except ImportError:  # pragma: no cover - the C extension is a dependency
            pass
        else:
            parser_class = getattr(cyaml, "CParser", None)
    if parser_class is None:
        from ruamel.yaml import YAML

        yield from YAML(typ="safe", pure=True).parse(text)
        return
    parser = parser_class(text)
    while True:
        event = parser.get_event()
        yield event
        if type(event) is StreamEndEvent:
            return


@cache
def _resolvers() -> dict[str, list[tuple[str, Any]]]:
    """ruamel's YAML 1.2 implicit resolvers: first character -> [(tag, regexp)]."""
    from ruamel.yaml.resolver import VersionedResolver

    table = VersionedResolver(version=(1, 2)).versioned_resolver
    out: dict[str, list[tuple[str, Any]]] = {}
    for first, entries in table.items():
        out[first or ""] = [(str(tag).removeprefix(_CORE_TAG_PREFIX), rx) for tag, rx in entries]
    return out


def _resolve(value: str, table: dict[str, list[tuple[str, Any]]] | None = None) -> str:
    """The core-schema type of a plain scalar: str, bool, int, float, null, timestamp..."""
    for tag, rx in (table or _resolvers()).get(value[:1], ()):
        if rx.match(value):
            return tag
    return "str"


class _Frame:
    __slots__ = ("container", "is_map", "key", "index", "path", "as_key")

    def __init__(self, container: Any, path: Path, is_map: bool, as_key: bool) -> None:
        self.container = container
        self.path = path
        self.is_map = is_map
        self.as_key = as_key
        self.key: Any = _EXPECT_KEY
        self.index = 0


class _Builder:
    """Builds plain data and positions from parse events, with an explicit stack."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.data: Any = None
        self.positions = Positions()
        self.diagnostics: list[Diagnostic] = []
        self.stack: list[_Frame] = []
        self.documents = 0
        self.nodes = 0
        self.alias_reported = False
        self.dropped = 0
        self.table = _resolvers()
        self.kinds: dict[str, str] = {}  # plain scalar -> resolved type, a per-file cache
        self.handlers: dict[str, Callable[[Any], None]] = {
            "ScalarEvent": self.scalar,
            "MappingStartEvent": self.mapping_start,
            "SequenceStartEvent": self.sequence_start,
            "MappingEndEvent": self.end,
            "SequenceEndEvent": self.end,
            "AliasEvent": self.alias,
            "DocumentStartEvent": self.document_start,
            "DocumentEndEvent": _ignore,
            "StreamStartEvent": _ignore,
            "StreamEndEvent": self.stream_end,
        }

    # -- driving

    def run(self, events: Iterator[Any]) -> None:
        handlers = self.handlers
        try:
            for event in events:
                handlers[type(event).__name__](event)
        except _Stop:
            pass
        except Exception as exc:  # includes RecursionError and MemoryError
            line, col, message = _syntax_error(exc)
            self.diagnostics.append(_diag(self.shown, line, col, "FL003", message))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def add(self, line: int, col: int, code: str, message: str) -> None:
        if len(self.diagnostics) >= MAX_PROBLEMS:
            self.fatal(
                line,
                col,
                "FL014",
                f"more problems follow; stopped reading after {MAX_PROBLEMS}: fix these "
                "and lint again",
            )
        self.diagnostics.append(_diag(self.shown, line, col, code, message))

    def fatal(self, line: int, col: int, code: str, message: str) -> NoReturn:
        self.diagnostics.append(_diag(self.shown, line, col, code, message))
        raise _Stop

    # -- events

    def document_start(self, event: Any) -> None:
        line, col = _mark(event)
        self.documents += 1
        if self.documents > 1:
            self.fatal(
                line,
                col,
                "FL012",
                "a second YAML document starts here: a file holds exactly one definition; "
                "move it to its own file",
            )
        version, tags = getattr(event, "version", None), getattr(event, "tags", None)
        if version is not None or tags:  # pragma: no cover - caught before parsing
            shown = "%YAML" if version is not None else "%TAG"
            self.fatal(line, col, "FL008", _directive_message(shown))

    def stream_end(self, event: Any) -> None:
        if self.documents == 0:
            self.fatal(
                1,
                1,
                "FL012",
                "the file is empty: a definition is a YAML mapping such as "
                "'kind: process' followed by its keys",
            )

    def scalar(self, event: Any) -> None:
        line, col = _mark(event)
        self.check_properties(event, line, col)
        style = event.style or ""
        raw: str = event.value
        plain = style == "" and event.tag is None
        unsafe = find_unsafe(raw, allow="\t\n")
        if unsafe >= 0:
            self.unsafe_char(raw, unsafe, line, col)
        if not self.stack:
            self.top_level_scalar(raw, plain, line, col)
        top = self.stack[-1]
        if top.is_map and top.key is _EXPECT_KEY:
            self.key(top, raw, plain, line, col)
            return
        if plain:
            value = self.plain_value(raw, line, col)
            self.attach(top, value, line, col, "" if type(value) is str else None)
        else:
            self.attach(top, raw, line, col, style)

    def unsafe_char(self, raw: str, index: int, line: int, col: int) -> None:
        where = f"after '{_clip(raw[:index])}'" if index else "at the start of a string"
        self.add(
            line,
            col,
            "FL002",
            f"forbidden character {describe_char(raw[index])} {where}: control characters "
            "(other than tab and line breaks) and bidi controls could rewrite a terminal "
            "or a diagram; remove it (a YAML escape such as \"\\e\" or \"\\0\" writes one)",
        )

    def mapping_start(self, event: Any) -> None:
        self.container_start(event, {}, True)

    def sequence_start(self, event: Any) -> None:
        self.container_start(event, [], False)

    def container_start(self, event: Any, container: Any, is_map: bool) -> None:
        line, col = _mark(event)
        self.check_properties(event, line, col)
        if len(self.stack) >= MAX_DEPTH:
            self.fatal(
                line,
                col,
                "FL007",
                f"nesting deeper than {MAX_DEPTH} levels: a definition needs only a few "
                "levels, and the limit keeps hostile files from exhausting the parser",
            )
        if not self.stack:
            if not is_map:
                self.fatal(line, col, "FL012", _not_mapping("a list"))
            self.data = container
            self.positions.values[()] = (line, col)
            self.stack.append(_Frame(container, (), True, False))
            return
        top = self.stack[-1]
        if top.is_map and top.key is _EXPECT_KEY:
            kind = "mapping" if is_map else "list"
            self.add(
                line, col, "FL010", f"a {kind} used as a mapping key: keys must be plain strings"
            )
            self.stack.append(_Frame(container, self.dropped_path(top), is_map, True))
            return
        path = self.attach(top, container, line, col, None)
        self.stack.append(_Frame(container, path, is_map, False))

    def end(self, event: Any) -> None:
        frame = self.stack.pop()
        if frame.as_key:
            self.stack[-1].key = _DROPPED

    def alias(self, event: Any) -> None:
        line, col = _mark(event)
        self.anchor_or_alias(line, col, f"alias *{_clip(str(event.anchor))}")
        if not self.stack:
            self.fatal(line, col, "FL012", _not_mapping("an alias"))
        top = self.stack[-1]
        if top.is_map and top.key is _EXPECT_KEY:
            top.key = _DROPPED
        else:
            self.attach(top, None, line, col, None)

    # -- helpers

    def check_properties(self, event: Any, line: int, col: int) -> None:
        if event.anchor is not None:
            self.anchor_or_alias(line, col, f"anchor &{_clip(str(event.anchor))}")
        if event.tag is not None:
            self.add(
                line,
                col,
                "FL006",
                f"explicit tag {_short_tag(event.tag)} is not allowed: definitions hold plain "
                "data only (strings, numbers, booleans, lists, mappings), and tags can ask a "
                "YAML library to build arbitrary objects; remove the tag",
            )

    def anchor_or_alias(self, line: int, col: int, what: str) -> None:
        if self.alias_reported:
            return
        self.alias_reported = True
        self.add(
            line,
            col,
            "FL005",
            f"{what}: anchors and aliases are not allowed, because a few aliases can expand "
            "into gigabytes; write the value out in full",
        )

    def resolve(self, raw: str) -> str:
        kind = self.kinds.get(raw)
        if kind is None:
            kind = self.kinds[raw] = _resolve(raw, self.table)
        return kind

    def top_level_scalar(self, raw: str, plain: bool, line: int, col: int) -> NoReturn:
        if plain and _resolve(raw) == "null":
            self.fatal(line, col, "FL012", _not_mapping("nothing (an empty document)"))
        self.fatal(line, col, "FL012", _not_mapping("a single value"))

    def key(self, top: _Frame, raw: str, plain: bool, line: int, col: int) -> None:
        kind = self.resolve(raw) if plain else "str"
        if kind == "merge":
            self.anchor_or_alias(line, col, "merge key <<")
            top.key = _DROPPED
            return
        if kind not in ("str", "value"):
            self.add(line, col, "FL010", _key_message(raw, kind))
            top.key = _DROPPED
            return
        path = top.path + (raw,)
        first = self.positions.keys.get(path)
        if first is not None:
            self.add(
                line,
                col,
                "FL004",
                f"duplicate key '{_clip(raw)}' (first at line {first[0]}): each key may appear "
                "once in a mapping, and YAML tools disagree on which value wins; "
                "remove or rename one",
            )
            top.key = _DROPPED
            return
        self.positions.keys[path] = (line, col)
        top.key = raw

    def attach(self, top: _Frame, value: Any, line: int, col: int, style: str | None) -> Path:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fatal(
                line,
                col,
                "FL015",
                f"more than {MAX_NODES:,} values in one file: a definition needs far fewer; "
                "split it into several processes",
            )
        if top.is_map:
            key = top.key
            top.key = _EXPECT_KEY
            if key is _DROPPED:
                path = self.dropped_path(top)
            else:
                path = top.path + (key,)
                top.container[key] = value
        else:
            path = top.path + (top.index,)
            top.index += 1
            top.container.append(value)
        self.positions.values[path] = (line, col)
        if style is not None:
            self.positions.styles[path] = style
        return path

    def dropped_path(self, top: _Frame) -> Path:
        """A unique path for a value whose key was refused (it never reaches data)."""
        self.dropped += 1
        return top.path + (f"{_DROPPED}{self.dropped}",)

    def plain_value(self, raw: str, line: int, col: int) -> Any:
        kind = self.resolve(raw)
        if kind == "null":
            return None
        if kind == "bool":
            return raw[0] in "tT"
        if kind == "int":
            return self.number(raw, _to_int(raw), line, col)
        if kind == "float":
            return self.number(raw, _to_float(raw), line, col)
        if kind == "timestamp":
            self.add(
                line,
                col,
                "FL009",
                f"unquoted date {_clip(raw)}: YAML reads it as a date object, which plain "
                f"data has no type for; quote it: '{_clip(raw)}'",
            )
        return raw

    def number(self, raw: str, value: int | float | str | None, line: int, col: int) -> Any:
        if value is None:  # looks numeric to the resolver but is not a number
            return raw
        if isinstance(value, str):
            self.add(line, col, "FL011", f"{_clip(raw)}: {value}; quote it if text is meant")
            return raw
        return value


# ---------------------------------------------------------------- small helpers


def _ignore(event: Any) -> None:
    return None


def _mark(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1


def _diag(shown: str, line: int, col: int, code: str, message: str) -> Diagnostic:
    return Diagnostic(shown, line, col, code, message)


def _line_col(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _clip(s: str) -> str:
    s = s.replace("\n", "\\n")
    return s if len(s) <= _SHOWN_MAX else s[: _SHOWN_MAX - 3] + "..."


def _short_tag(tag: Any) -> str:
    text = str(tag)
    if text.startswith(_CORE_TAG_PREFIX):
        text = "!!" + text[len(_CORE_TAG_PREFIX) :]
    return _clip(text)


def _not_mapping(what: str) -> str:
    return (
        f"the top level holds {what}, but a definition is one YAML mapping "
        "('kind: process' or 'kind: org' followed by its keys)"
    )


_KEY_KINDS: Final = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "timestamp": "a date",
}


def _key_message(raw: str, kind: str) -> str:
    if not raw:
        return "a mapping key is missing (an empty key is null): keys must be strings"
    what = _KEY_KINDS.get(kind, "not a string")
    return (
        f"mapping key {_clip(raw)} is {what}, not a string: keys must be strings; "
        f"quote it: '{_clip(raw)}'"
    )


def _to_int(raw: str) -> int | str | None:
    """int value; None if not a number after all; a reason (str) if unrepresentable."""
    s = raw.replace("_", "")
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    base = {"0b": 2, "0o": 8, "0x": 16}.get(s[:2], 10)
    digits = s[2:] if base != 10 else s
    if not digits:
        return None
    try:
        value = sign * int(digits, base)
    except ValueError:
        if not digits.isdigit():
            return None
        return (
            f"an integer of {len(digits):,} digits is too large to convert safely "
            "(the limit is 4,300 digits)"
        )
    if abs(value) > _LARGEST:
        return (
            f"the number is too large: flowctl compares numbers as 64-bit floating point, "
            f"which holds at most about 1.8e308, and this integer has {len(str(abs(value))):,} "
            "digits"
        )
    return value


def _to_float(raw: str) -> float | str | None:
    """float value; None if not a number after all; a reason (str) if not finite."""
    s = raw.replace("_", "").lower()
    if s.lstrip("+-") in (".inf", ".nan"):
        return (
            "non-finite numbers (.nan, .inf) are not allowed: JSON and the schema "
            "cannot represent them"
        )
    try:
        value = float(s)
    except ValueError:
        return None
    if not math.isfinite(value):
        return "the number is too large: it overflows to infinity, which JSON cannot represent"
    return value


TAB_INDENT = (
    "invalid YAML: this line is indented with a tab; indent with spaces "
    "(YAML does not allow tabs in indentation)"
)


def _explain_tab_indent(diagnostics: list[Diagnostic], text: str) -> None:
    """Say "indent with spaces" when the parser stopped on a line indented with a tab."""
    for i, diag in enumerate(diagnostics):
        if diag.code != "FL003" or not diag.message.startswith("invalid YAML:"):
            continue
        lines = text.split("\n", diag.line)
        if diag.line > len(lines):
            continue
        line = lines[diag.line - 1]
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            col = indent.index("\t") + 1
            diagnostics[i] = _diag(diag.file, diag.line, col, "FL003", TAB_INDENT)


def _syntax_error(exc: BaseException) -> tuple[int, int, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None)
    if not problem:
        return line, col, f"the YAML parser failed: {_clip(str(exc)) or type(exc).__name__}"
    message = f"invalid YAML: {problem}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        message += f" ({context} started at line {context_mark.line + 1})"
    elif context:
        message += f" ({context})"
    return line, col, message
