"""The bundled JSON Schemas, and the schema check of a loaded document.

``validate(doc)`` picks the schema from the document's top-level ``kind``
and turns every JSON Schema error into a located, readable
:class:`~flowctl.diagnostics.Diagnostic`:

=====  ==========================================================  ======================
code   problem                                                     located at
=====  ==========================================================  ======================
FL100  ``kind`` missing or not ``process``/``org``                 the ``kind`` value, or 1:1
FL101  unknown key, or a key the stage kind does not take          the key
FL102  missing required key                                        the mapping's key
FL103  wrong type                                                  the value
FL104  value not allowed (not one of the allowed values)           the value
FL105  bad format (an id, a field name, a date, hours...)          the value, or the key
FL106  other schema violation (empty list, duplicates, two forms)  the value
=====  ==========================================================  ======================

The schemas are read once from package resources; the validators are built
once per kind. Output is sorted and does not depend on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import msgspec

from flowctl.definition.document import Document
from flowctl.diagnostics import Diagnostic
from flowctl.model import Path

if TYPE_CHECKING:  # jsonschema (~60 ms to import) only explains invalid documents
    from jsonschema import Draft202012Validator, ValidationError

KINDS: Final = ("process", "org")
SCHEMA_FILES: Final = {"process": "process.schema.json", "org": "org.schema.json",
                        "scenario": "scenario.schema.json"}
# Schemas of files that are not definitions (``flowctl test`` scenario files):
# checked by :func:`validate_as`, printed by ``flowctl schema``.
OTHER_KINDS: Final = ("scenario",)

FL_UNKNOWN_KIND: Final = "FL100"
FL_UNKNOWN_KEY: Final = "FL101"
FL_MISSING_KEY: Final = "FL102"
FL_WRONG_TYPE: Final = "FL103"
FL_NOT_ALLOWED: Final = "FL104"
FL_BAD_FORMAT: Final = "FL105"
FL_SCHEMA: Final = "FL106"

_SHOWN_MAX: Final = 60

_TYPE_WORDS: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}

# pattern -> (what a matching value is, how to write one). Each ends in
# "(?!\n)$": in Python's re (jsonschema's), "$" also matches before a final
# newline, so "nl\n" would pass as an id; in ECMA-262 (jsonschema-rs,
# check-jsonschema) "$" is the end of the text. The lookahead makes both read
# "the end". "\s" is written out as ECMA-262's list of spaces: Python's and
# Rust's lists differ from it (and from each other).
_NOT_SPACE: Final = (
    "[^@\\x09-\\x0d\\x20\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f"
    "\\u205f\\u3000\\ufeff]"
)
_PATTERN_RULES: Final = {
    "^[a-z][a-z0-9-]*(?!\\n)$": ("id", "ASCII a-z, digits and '-', starting with a letter"),
    "^[a-z][a-z0-9_]*(?!\\n)$": (
        "field name",
        "ASCII a-z, digits and '_', starting with a letter",
    ),
    "^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)(?!\\n)$": (
        "time range",
        'HH:MM-HH:MM, quoted, e.g. "09:00-18:00"',
    ),
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(?!\\n)$": (
        "date",
        'YYYY-MM-DD, quoted, e.g. "2027-01-01"',
    ),
    f"^{_NOT_SPACE}+@{_NOT_SPACE}+(?!\\n)$": (
        "email address",
        "name@example.com",
    ),
}

# top-level lists whose items are named by their ``id`` in messages
_NAMED_ITEMS: Final = {
    "stages": "stage",
    "phases": "phase",
    "users": "user",
    "departments": "department",
    "roles": "role",
}


# ---------------------------------------------------------------- schemas


def schema_text(kind: str) -> str:
    """The bundled schema for ``kind`` (``process`` or ``org``) as JSON text.

    Raises ``KeyError`` for any other kind.
    """
    return _schema_text(kind)


@cache
def _schema_text(kind: str) -> str:
    import os

    name = SCHEMA_FILES[kind]
    try:  # an installed package is a folder: skip importlib.resources (~4 ms to import)
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", name)
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        pass
    from importlib import resources

    folder = resources.files("flowctl").joinpath("schemas")
    return folder.joinpath(name).read_text(encoding="utf-8")


@cache
def load_schema(kind: str) -> Mapping[str, Any]:
    """The bundled schema for ``kind``, parsed once (treat it as read-only)."""
    schema: dict[str, Any] = msgspec.json.decode(_schema_text(kind))
    return schema


@cache
def _validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(kind))


# When jsonschema-rs is installed, a valid document (the usual case) is
# confirmed by it in well under a millisecond, and jsonschema (~100 times
# slower, but with the error detail the messages need) runs only on documents
# that have errors. tests/test_schema_differential.py checks that the two
# agree; set False to always use jsonschema.
USE_FAST_CHECK = True


@cache
def _fast_validator(kind: str) -> Any:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.Draft202012Validator(dict(load_schema(kind)))


def is_valid(kind: str, data: Any) -> bool:
    """Whether ``data`` is valid against the bundled ``kind`` schema."""
    fast = _fast_validator(kind) if USE_FAST_CHECK else None
    if fast is not None:
        try:
            return bool(fast.is_valid(data))
        except ValueError:  # not plain JSON data (the loader never makes such)
            pass
    return bool(_validator(kind).is_valid(data))


# ---------------------------------------------------------------- validate


def validate(doc: Document) -> list[Diagnostic]:
    """Check a loaded document against the schema its ``kind`` names.

    Returns located diagnostics, sorted; none when the document is valid or
    could not be loaded (the loader has reported that already).
    """
    data = doc.data
    if data is None:
        return []
    if not isinstance(data, dict):
        return [_kind_diagnostic(doc, data)]
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        return [_kind_diagnostic(doc, data)]
    if is_valid(kind, data):
        return []
    mapper = _ErrorMapper(doc, load_schema(kind))
    for error in _validator(kind).iter_errors(data):
        mapper.add(error)
    # The verdict is the fast validator's: when jsonschema, asked to explain,
    # finds nothing (their regular expressions could differ), its own errors are
    # reported; a document it refuses is never passed.
    return mapper.diagnostics() or _fast_diagnostics(doc, kind)


def validate_as(doc: Document, kind: str) -> list[Diagnostic]:
    """Check a loaded document against the bundled ``kind`` schema whatever its
    own ``kind`` says (a scenario file): located diagnostics, sorted."""
    data = doc.data
    if data is None or is_valid(kind, data):
        return []
    mapper = _ErrorMapper(doc, load_schema(kind))
    for error in _validator(kind).iter_errors(data):
        mapper.add(error)
    return mapper.diagnostics() or _fast_diagnostics(doc, kind)


def _fast_diagnostics(doc: Document, kind: str) -> list[Diagnostic]:
    """jsonschema-rs's own errors for ``doc``, located and worded like the others."""
    out: set[Diagnostic] = set()
    try:
        errors = list(_fast_validator(kind).iter_errors(doc.data))
    except (AttributeError, ValueError):  # no jsonschema-rs, or data it cannot read
        errors = []
    for error in errors:
        path: Path = tuple(error.instance_path)
        what = describe(doc.data, path)
        pattern = getattr(error.kind, "pattern", None)
        if isinstance(pattern, str):
            noun, how = _PATTERN_RULES.get(pattern, ("value", f"match {pattern}"))
            message = f"{what} is not a valid {noun}: {_short(error.instance)} (use {how})"
            out.add(doc.diag(path, FL_BAD_FORMAT, message))
        else:
            text = error.message
            if len(text) > 2 * _SHOWN_MAX:
                text = text[: 2 * _SHOWN_MAX - 3] + "..."
            out.add(doc.diag(path, FL_SCHEMA, f"{what}: {text}"))
    if not out:
        out.add(Diagnostic(doc.path, 1, 1, FL_SCHEMA, "the document does not match the schema"))
    return sorted(out)


def _kind_diagnostic(doc: Document, data: Any) -> Diagnostic:
    allowed = " or ".join(f"kind: {k}" for k in KINDS)
    if not isinstance(data, dict):
        message = f"a definition must be a mapping with {allowed}, got {_got(data)}"
        return Diagnostic(doc.path, 1, 1, FL_UNKNOWN_KIND, message)
    if "kind" not in data:
        message = f"missing required key 'kind': a definition starts with {allowed}"
        return Diagnostic(doc.path, 1, 1, FL_UNKNOWN_KIND, message)
    kind = data["kind"]
    message = (
        f"unknown kind {_short(kind)}{_suggest(kind, KINDS)}; allowed kinds: {', '.join(KINDS)}"
    )
    return doc.diag(("kind",), FL_UNKNOWN_KIND, message)


# ---------------------------------------------------------------- messages


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _got(value: Any) -> str:
    if value is None:
        return "an empty value"
    return f"{_json_type(value)} {_short(value)}"


def _expected(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_WORDS.get(t, t) for t in names)


def _suggest(value: Any, allowed: Iterable[Any]) -> str:
    if not isinstance(value, str):
        return ""
    import difflib

    choices = [a for a in allowed if isinstance(a, str)]
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _render_rest(rest: Sequence[str | int]) -> str:
    out = ""
    for part in rest:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _named(what: str, item: Any, index: int) -> str:
    name = item.get("id") if isinstance(item, dict) else None
    if isinstance(name, str):
        return f"{what} {_short(name)}"  # repr: a name is shown escaped
    return f"{what} #{index + 1}"


def _anchor(data: Any, path: Path) -> tuple[str, int]:
    """The named thing nearest the top of ``path``, and how many parts it used."""
    if len(path) >= 2 and isinstance(path[1], int) and path[0] in _NAMED_ITEMS:
        items = data.get(path[0]) if isinstance(data, dict) else None
        item = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        label = _named(_NAMED_ITEMS[str(path[0])], item, path[1])
        if path[0] == "stages" and isinstance(item, dict):
            kind = item.get("kind")
            if isinstance(kind, str) and kind in _stage_kinds():
                label = f"{kind} {label}"
                if kind == "subprocess" and item.get("wait") is False:
                    label += " with wait: false"
        return label, 2
    if len(path) >= 2 and path[0] == "fields" and isinstance(path[1], str):
        return f"field '{path[1]}'", 2
    return "", 0


@cache
def _stage_kinds() -> tuple[str, ...]:
    kinds = load_schema("process")["$defs"]["stage"]["properties"]["kind"]["enum"]
    return tuple(kinds)


def describe(data: Any, path: Path) -> str:
    """A human name for the node at ``path``, e.g. ``'sla.within' of task stage 'x'``."""
    anchor, used = _anchor(data, path)
    rest = _render_rest(path[used:])
    if not anchor:
        if not rest:
            kind = data.get("kind") if isinstance(data, dict) else None
            return "org directory" if kind == "org" else "process"
        return f"'{rest}'"
    return f"'{rest}' of {anchor}" if rest else anchor


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


# ---------------------------------------------------------------- mapping


class _ErrorMapper:
    """Collects jsonschema errors of one document as diagnostics."""

    def __init__(self, doc: Document, schema: Mapping[str, Any]) -> None:
        self.doc = doc
        self.defs: Mapping[str, Any] = schema.get("$defs", {})
        self.out: set[Diagnostic] = set()
        # key path -> (mapping path, allowed keys), from additionalProperties
        self.unknown: dict[Path, tuple[Path, tuple[str, ...]]] = {}
        # key path -> (mapping path, allowed keys), from a kind's propertyNames
        self.misplaced: dict[Path, tuple[Path, tuple[str, ...]]] = {}

    # -- entry points

    def add(self, error: ValidationError) -> None:
        path: Path = tuple(error.absolute_path)
        schema_path = list(error.relative_schema_path)
        if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
            self._property_name(error, path)
            return
        handler = _HANDLERS.get(str(error.validator), _ErrorMapper._other)
        handler(self, error, path)

    def diagnostics(self) -> list[Diagnostic]:
        for key_path, (mapping, allowed) in self.unknown.items():
            if key_path not in self.misplaced:
                self._unknown_key(mapping, key_path, allowed)
        for key_path, (mapping, allowed) in self.misplaced.items():
            if key_path in self.unknown:
                self._unknown_key(mapping, key_path, allowed)
            else:
                key = str(key_path[-1])
                what = describe(self.doc.data, mapping)
                message = f"key '{key}' is not allowed in {what}; allowed: {', '.join(allowed)}"
                self.emit(key_path, FL_UNKNOWN_KEY, message, at_key=True)
        return sorted(self.out)

    # -- helpers

    def emit(self, path: Path, code: str, message: str, *, at_key: bool = False) -> None:
        self.out.add(self.doc.diag(path, code, message, at_key=at_key))

    def what(self, path: Path) -> str:
        return describe(self.doc.data, path)

    def resolve(self, schema: Any) -> Mapping[str, Any]:
        """A subschema with one level of local ``$ref`` merged in."""
        if not isinstance(schema, Mapping):
            return {}
        ref = schema.get("$ref")
        prefix = "#/$defs/"
        if isinstance(ref, str) and ref.startswith(prefix):
            target = self.defs.get(ref[len(prefix) :], {})
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def _unknown_key(self, mapping: Path, key_path: Path, allowed: Sequence[str]) -> None:
        key = str(key_path[-1])
        message = (
            f"unknown key '{key}' in {self.what(mapping)}{_suggest(key, allowed)}; "
            f"allowed: {', '.join(allowed)}"
        )
        self.emit(key_path, FL_UNKNOWN_KEY, message, at_key=True)

    # -- handlers, one per JSON Schema keyword

    def _property_name(self, error: ValidationError, path: Path) -> None:
        key = error.instance
        key_path: Path = (*path, str(key))
        if error.validator == "enum":
            self.misplaced[key_path] = (path, tuple(str(v) for v in _keyword_value(error)))
            return
        noun, rule = _PATTERN_RULES.get(str(_keyword_value(error)), ("key", ""))
        if error.validator == "pattern":
            how = rule or f"match {_keyword_value(error)}"
            message = f"key {_short(key)} in {self.what(path)} is not a valid {noun} (use {how})"
            self.emit(key_path, FL_BAD_FORMAT, message, at_key=True)
            return
        self.emit(key_path, FL_SCHEMA, f"key {_short(key)} in {self.what(path)}: {error.message}")

    def _additional(self, error: ValidationError, path: Path) -> None:
        instance = error.instance
        if not isinstance(instance, dict) or _keyword_value(error) is not False:
            self._other(error, path)
            return
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = tuple(schema.get("properties", {}))
        for key in instance:
            if key not in allowed:
                self.unknown[(*path, key)] = (path, allowed)

    def _required(self, error: ValidationError, path: Path) -> None:
        instance = error.instance if isinstance(error.instance, dict) else {}
        for key in _keyword_value(error):
            if key not in instance:
                message = f"missing required key '{key}' in {self.what(path)}"
                self.emit(path, FL_MISSING_KEY, message, at_key=True)

    def _type(self, error: ValidationError, path: Path) -> None:
        message = (
            f"{self.what(path)} must be {_expected(_keyword_value(error))}, "
            f"got {_got(error.instance)}"
        )
        self.emit(path, FL_WRONG_TYPE, message)

    def _enum(self, error: ValidationError, path: Path) -> None:
        allowed = list(_keyword_value(error))
        message = (
            f"{self.what(path)} must be one of {', '.join(str(a) for a in allowed)}; "
            f"got {_short(error.instance)}{_suggest(error.instance, allowed)}"
        )
        self.emit(path, FL_NOT_ALLOWED, message)

    def _const(self, error: ValidationError, path: Path) -> None:
        expected = _keyword_value(error)
        message = f"{self.what(path)} must be {expected!r}; got {_short(error.instance)}"
        self.emit(path, FL_NOT_ALLOWED, message)

    def _pattern(self, error: ValidationError, path: Path) -> None:
        rule = _PATTERN_RULES.get(str(_keyword_value(error)))
        noun, how = rule if rule else ("value", f"match {_keyword_value(error)}")
        message = f"{self.what(path)} is not a valid {noun}: {_short(error.instance)} (use {how})"
        self.emit(path, FL_BAD_FORMAT, message)

    def _min_items(self, error: ValidationError, path: Path) -> None:
        n = int(_keyword_value(error))
        message = f"{self.what(path)} must have at least {n} {_plural(n, 'item', 'items')}"
        self.emit(path, FL_SCHEMA, message)

    def _min_properties(self, error: ValidationError, path: Path) -> None:
        n = int(_keyword_value(error))
        message = f"{self.what(path)} must have at least {n} {_plural(n, 'entry', 'entries')}"
        self.emit(path, FL_SCHEMA, message)

    def _min_length(self, error: ValidationError, path: Path) -> None:
        self.emit(path, FL_SCHEMA, f"{self.what(path)} must not be empty")

    def _unique(self, error: ValidationError, path: Path) -> None:
        seen: list[Any] = []
        duplicate: Any = None
        for item in error.instance if isinstance(error.instance, list) else []:
            if item in seen:
                duplicate = item
                break
            seen.append(item)
        message = f"{self.what(path)} lists {_short(duplicate)} more than once"
        self.emit(path, FL_SCHEMA, message)

    def _other(self, error: ValidationError, path: Path) -> None:
        text = error.message
        if len(text) > 2 * _SHOWN_MAX:
            text = text[: 2 * _SHOWN_MAX - 3] + "..."
        self.emit(path, FL_SCHEMA, f"{self.what(path)}: {text}")

    # -- oneOf / anyOf: report the branch the author meant

    def _one_of(self, error: ValidationError, path: Path) -> None:
        branches = [self.resolve(b) for b in _keyword_value(error)]
        forms = "; ".join(str(b.get("title", "?")) for b in branches)
        if not error.context:
            self.emit(path, FL_SCHEMA, f"{self.what(path)} matches more than one of: {forms}")
            return
        by_branch: dict[int, list[ValidationError]] = {i: [] for i in range(len(branches))}
        for sub in error.context:
            by_branch[int(sub.relative_schema_path[0])].append(sub)
        typed = [i for i, errs in by_branch.items() if not any(_rules_out(e) for e in errs)]
        chosen = self._choose(error.instance, branches, typed)
        if chosen is not None:
            for sub in by_branch[chosen]:
                self.add(sub)
            return
        self._no_branch(error.instance, path, branches, typed, forms)

    def _choose(
        self, instance: Any, branches: list[Mapping[str, Any]], typed: list[int]
    ) -> int | None:
        if len(typed) == 1:
            return typed[0]
        if not isinstance(instance, dict):
            return None
        overlap = [i for i in typed if set(instance) & set(branches[i].get("properties", {}))]
        return overlap[0] if len(overlap) == 1 else None

    def _no_branch(
        self,
        instance: Any,
        path: Path,
        branches: list[Mapping[str, Any]],
        typed: list[int],
        forms: str,
    ) -> None:
        what = self.what(path)
        if not isinstance(instance, dict) or not typed:
            code = FL_NOT_ALLOWED if isinstance(instance, str) else FL_WRONG_TYPE
            got = _short(instance) if isinstance(instance, str) else _got(instance)
            self.emit(path, code, f"{what} must be one of: {forms}; got {got}")
            return
        known: list[str] = []
        for i in typed:
            known += [k for k in branches[i].get("properties", {}) if k not in known]
        used = [k for k in instance if k in known]
        if len(used) > 1:
            keys = " and ".join(f"'{k}'" for k in used)
            self.emit(path, FL_SCHEMA, f"{what} mixes {keys}; use exactly one of: {forms}")
            return
        strangers = [k for k in instance if k not in known]
        for key in strangers:
            self._unknown_key(path, (*path, key), known)
        if not strangers:
            self.emit(path, FL_SCHEMA, f"{what} must be one of: {forms}")


def _keyword_value(error: ValidationError) -> Any:
    """The value of the failing keyword in the schema (e.g. the enum's list)."""
    return error.validator_value


def _rules_out(error: ValidationError) -> bool:
    """An error saying the instance is not of the branch's type at all."""
    return not error.relative_path and error.validator in ("type", "const")


_HANDLERS: Final = {
    "additionalProperties": _ErrorMapper._additional,
    "required": _ErrorMapper._required,
    "type": _ErrorMapper._type,
    "enum": _ErrorMapper._enum,
    "const": _ErrorMapper._const,
    "pattern": _ErrorMapper._pattern,
    "minItems": _ErrorMapper._min_items,
    "minProperties": _ErrorMapper._min_properties,
    "minLength": _ErrorMapper._min_length,
    "uniqueItems": _ErrorMapper._unique,
    "oneOf": _ErrorMapper._one_of,
    "anyOf": _ErrorMapper._one_of,
}


# ---------------------------------------------------------------- the well-formed part


class WellFormed(msgspec.Struct):
    """A process document with its broken parts taken out, so the semantic
    rules can run over the rest (:func:`well_formed_part`).

    ``data`` passes the schema. A broken stage is replaced by a stand-in
    with the same id, start flag and the targets its raw data names, so
    references to it and the ways through it still count; nothing located
    in it is reported (``broken``: the paths of what was replaced or taken
    out). ``fields_broken``/``phases_broken``: a field definition or a phase
    was taken out, so what reads fields or names phases cannot be judged.
    """

    data: dict[str, Any]
    broken: list[Path]
    fields_broken: bool = False
    phases_broken: bool = False


_PARTIAL_ROUNDS: Final = 12
_REQUIRED_TOP: Final = ("kind", "id", "name", "stages")
_ID_TEXT: Final = re.compile(r"^[a-z][a-z0-9-]*$")


_STEERING: Final = ("results", "branches", "default", "next", "start", "kind")


def _steering(key: str) -> str | None:
    """The key that decides where a stage leads that ``key`` is (or is a
    misspelling of: ``reslts``), if any."""
    if key in _STEERING:
        return key
    close = difflib.get_close_matches(key, _STEERING, n=1, cutoff=0.75)
    return close[0] if close else None


def _raw_targets(raw: Any) -> list[str]:
    """The stage ids a stage's raw data names as where it leads (loosely read,
    misspelt keys included)."""
    if not isinstance(raw, dict):
        return []
    out: list[Any] = []
    for key, value in raw.items():
        meant = _steering(str(key))
        if meant == "results" and isinstance(value, dict):
            out += [r.get("to") if isinstance(r, dict) else r for r in value.values()]
        elif meant == "branches" and isinstance(value, list):
            out += [b.get("to") for b in value if isinstance(b, dict)]
        elif meant in ("default", "next"):
            out.append(value)
    return list(dict.fromkeys(t for t in out if isinstance(t, str) and _ID_TEXT.match(t)))


def _stand_in(raw: Any, index: int) -> dict[str, Any]:
    sid = raw.get("id") if isinstance(raw, dict) else None
    if not (isinstance(sid, str) and _ID_TEXT.match(sid)):
        sid = f"broken-stage-{index + 1}"
    stage: dict[str, Any] = {"id": sid}
    if isinstance(raw, dict) and any(_steering(str(k)) == "start" and v not in (None, False)
                                     for k, v in raw.items()):  # `start: [yes]` meant it
        stage["start"] = True
    targets = _raw_targets(raw)
    if targets:
        stage.update(kind="task", assignee="initiator",
                     results={f"r{i}": t for i, t in enumerate(targets)})
    else:
        stage["kind"] = "end"
    return stage


def _unknown_keys(error: ValidationError) -> list[str]:
    instance = error.instance
    schema_path = list(error.relative_schema_path)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        return [str(instance)]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = schema.get("properties", {})
        return [k for k in instance if k not in allowed]
    return []


def well_formed_part(doc: Document) -> WellFormed | None:
    """The part of a process document that is well formed (see
    :class:`WellFormed`), or None when too much is broken for rules to mean
    anything (the top-level keys themselves, or the list of stages)."""
    if doc.kind != "process" or not isinstance(doc.data, dict):
        return None
    data: dict[str, Any] = copy.deepcopy(doc.data)
    out = WellFormed(data, [])
    validator = _validator("process")
    for _ in range(_PARTIAL_ROUNDS):
        errors = list(validator.iter_errors(data))
        if not errors:
            return out
        for error in errors:
            if not _take_out(out, error, doc.data):
                return None
    return None


def _take_out(out: WellFormed, error: ValidationError, raw: Any) -> bool:
    """Take what ``error`` is about out of ``out.data`` (``raw``: the document
    as written); False if that cannot be done."""
    data = out.data
    path: Path = tuple(error.absolute_path)
    extra = _unknown_keys(error)
    target = _at(data, path)
    if not path:
        if not extra or set(extra) & set(_REQUIRED_TOP):
            return False
        for key in extra:
            data.pop(key, None)
        out.broken += [(k,) for k in extra]
        return True
    if path[0] == "stages":
        stages = data.get("stages")
        if len(path) < 2 or not isinstance(path[1], int) or not isinstance(stages, list):
            return False
        i = path[1]
        if ("stages", i) in out.broken:
            return True  # a stand-in already
        steers = len(path) == 2 and any(_steering(k) for k in extra)
        if extra and isinstance(target, dict) and not steers:
            for key in extra:  # a misspelt key that does not decide where it leads
                target.pop(key, None)
            return True
        out.broken.append(("stages", i))
        stages[i] = _stand_in(_at(raw, ("stages", i)), i)
        return True
    if extra and isinstance(target, dict):
        for key in extra:
            target.pop(key, None)
        return True
    if path[0] in _REQUIRED_TOP:
        return False
    if path[0] == "fields" and len(path) >= 2 and isinstance(data.get("fields"), dict):
        data["fields"].pop(path[1], None)
        out.fields_broken = True
        out.broken.append(("fields", path[1]))
        return True
    out.phases_broken = out.phases_broken or path[0] == "phases"
    data.pop(str(path[0]), None)
    out.broken.append((path[0],))
    return True
def _at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
