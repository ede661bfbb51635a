"""The semantic rules over the well-formed part of a document that breaks the schema.

One misspelt key must not hide every other problem of a file: when a
process document fails the JSON Schema, the broken parts are taken out (or a
broken stage replaced by a stand-in that keeps its id and where it leads:
:func:`flowctl.definition.schema.well_formed_part`) and the single-file
rules run over what is left. What cannot be judged is not reported: nothing
located in a broken part, and, when a field definition, the phases or the
calendar were taken out, none of the rules that depend on them.
"""

from __future__ import annotations

from msgspec import field

from flowctl.definition.build import build_process
from flowctl.definition.document import Document
from flowctl.definition.schema import WellFormed, well_formed_part
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.lint.rules import SINGLE_FILE_RULES, Context, References, references
from flowctl.model import Path

# what a rule's verdict depends on, when that part was taken out
_DEPENDS: dict[str, frozenset[str]] = {
    "fields": frozenset({"FL211", "FL212", "FL225", "FL235", "FL303", "FL304", "FL305"}),
    "phases": frozenset({"FL214", "FL220"}),
    "calendar": frozenset({"FL226"}),
}


class _PartContext(Context):
    skip: list[Path] = field(default_factory=list)

    def emit(self, code: str, path: Path, message: str, *, at_key: bool = False) -> None:
        p = tuple(path)
        if any(p[:len(b)] == b for b in self.skip):
            return
        super().emit(code, path, message, at_key=at_key)


def schema_only(doc: Document) -> bool:
    """Whether every error of ``doc`` is the schema's (the YAML itself loaded)."""
    return doc.data is not None and all(d.code.startswith("FL1") for d in doc.diagnostics
                                        if d.severity is Severity.ERROR)


def partial_problems(doc: Document) -> tuple[list[Diagnostic], References | None]:
    """The single-file rules' problems in the well-formed part of ``doc`` (a
    process document with schema errors only), and what that part names in
    the org directory and in other processes (for the rules that need them);
    nothing when too much is broken."""
    if not schema_only(doc):
        return [], None
    part = well_formed_part(doc)
    if part is None:
        return [], None
    return _run(doc, part)


def _run(doc: Document, part: WellFormed) -> tuple[list[Diagnostic], References]:
    # a stand-in stage names nobody (its assignee is the initiator): the
    # references are those of the well-formed part only
    proc = build_process(part.data, source=doc.path)
    ctx = _PartContext(doc=doc, proc=proc, org=None, catalog={}, skip=list(part.broken))
    for check in SINGLE_FILE_RULES:
        check(ctx)
    dropped: set[str] = set()
    gone = {b[0] for b in part.broken}
    for key, codes in _DEPENDS.items():
        if key in gone or (key == "fields" and part.fields_broken) \
                or (key == "phases" and part.phases_broken):
            dropped |= codes
    return [d for d in ctx.out if d.code not in dropped], references(doc, proc)
