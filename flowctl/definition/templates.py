"""Message templates of ``notify:``: ``{{ name }}`` placeholders, nothing else.

A template is plain text with placeholders: ``{{ record.customer }}`` (a
field of the instance's record) or one of :data:`BUILTINS` (``{{ instance }}``,
``{{ stage }}``...). There are no expressions, filters, loops or attribute
access: rendering replaces each placeholder by its value as text and can run
no code, whatever the definition says. The linter reports a placeholder that
names nothing (FL272); at run time an empty field renders as nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
NAME = re.compile(r"record\.[a-z][a-z0-9_]*|[a-z][a-z_]*")

BUILTINS: dict[str, str] = {
    "instance": "the instance id (contract-approval-4)",
    "process": "the process name",
    "stage": "the stage's name",
    "stage_id": "the stage's id",
    "initiator": "the initiator's name",
    "assignees": "who holds the stage (names)",
    "due_at": "when the stage is due (ISO 8601), empty without an SLA",
    "outcome": "how the instance ended (at an end stage)",
    "event": "what happened: entered, reminder, overdue, escalated, task, outcome",
}


def placeholders(template: str) -> list[str]:
    """The text inside each ``{{ }}``, stripped, in order."""
    return [m.group(1).strip() for m in PLACEHOLDER.finditer(template)]


def problems(template: str, fields: set[str]) -> list[str]:
    """What is wrong with a template's placeholders, one text each."""
    out = []
    for name in placeholders(template):
        if not NAME.fullmatch(name):
            out.append(f"`{{{{ {name} }}}}` is not a placeholder: write {{{{ record.FIELD }}}} or"
                       f" one of {', '.join(BUILTINS)}")
        elif name.startswith("record."):
            if name[7:] not in fields:
                out.append(f"`{{{{ {name} }}}}` names field '{name[7:]}', which the process does"
                           f" not declare; its fields: {', '.join(sorted(fields)) or 'none'}")
        elif name not in BUILTINS:
            out.append(f"`{{{{ {name} }}}}` is not a value templates know: fields are"
                       f" {{{{ record.FIELD }}}}; the others: {', '.join(BUILTINS)}")
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def render(template: str, values: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """The template with each placeholder replaced by its value's text."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        if name.startswith("record."):
            return _text(record.get(name[7:]))
        return _text(values.get(name))

    return PLACEHOLDER.sub(one, template)
