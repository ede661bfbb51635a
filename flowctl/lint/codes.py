"""Every diagnostic code flowctl reports, with a stable name and summary.

Codes never change meaning. FL0xx come from the loader, FL1xx from the JSON
Schema check, FL2xx are the semantic rules over a process, FL3xx are about
conditions, FL4xx about the org directory and references into it.
``docs/rules.md`` documents each one with a bad and a good example.
"""

from __future__ import annotations

from msgspec import Struct

from flowctl.diagnostics import Severity


class Rule(Struct, frozen=True):
    code: str
    name: str
    summary: str
    severity: Severity = Severity.ERROR


_E, _W = Severity.ERROR, Severity.WARNING

_ALL = [
    # loader
    Rule("FL001", "file-too-large", "The file is larger than the size cap."),
    Rule("FL002", "invalid-encoding", "The file is not valid UTF-8 or has a forbidden character."),
    Rule("FL003", "yaml-syntax", "The file is not well-formed YAML."),
    Rule("FL004", "duplicate-key", "A mapping has the same key twice."),
    Rule("FL005", "alias", "YAML anchors and aliases are not allowed."),
    Rule("FL006", "tag", "Explicit YAML tags are not allowed."),
    Rule("FL007", "too-deep", "The document nests deeper than the depth cap."),
    Rule("FL008", "directive", "%YAML and %TAG directives are not allowed."),
    Rule("FL009", "unquoted-date", "A date or time must be quoted."),
    Rule("FL010", "non-string-key", "Mapping keys must be strings."),
    Rule("FL011", "non-finite-number", "NaN, infinity and numbers too large to compare."),
    Rule("FL012", "not-a-mapping", "A definition must be a single YAML mapping."),
    Rule("FL013", "unreadable", "The file cannot be read."),
    Rule("FL014", "too-many-problems", "The file has too many problems to list them all."),
    Rule("FL015", "too-many-nodes", "The file holds more values than the cap."),
    # schema
    Rule("FL100", "unknown-kind", "The top-level `kind` is missing or not known."),
    Rule("FL101", "unknown-key", "A key the format does not define."),
    Rule("FL102", "missing-key", "A required key is missing."),
    Rule("FL103", "wrong-type", "A value has the wrong type."),
    Rule("FL104", "value-not-allowed", "A value is not one of the allowed values."),
    Rule("FL105", "bad-format", "A value does not have the required form."),
    Rule("FL106", "schema", "Another JSON Schema constraint is violated."),
    # process rules
    Rule("FL201", "no-start", "A process needs exactly one start stage; it has none."),
    Rule("FL202", "several-starts", "A process needs exactly one start stage; it has several."),
    Rule("FL203", "no-end", "A process needs at least one end stage."),
    Rule("FL204", "unknown-stage", "A transition names a stage that does not exist."),
    Rule("FL205", "unreachable-stage", "No path leads from the start stage to this stage."),
    Rule("FL206", "no-path-to-end", "No path leads from this stage to any end stage."),
    Rule("FL207", "no-way-out", "A stage that is not an end has no way out."),
    Rule("FL208", "end-with-results", "An end stage must not lead anywhere."),
    Rule("FL209", "duplicate-id", "Two stages, phases or tasks share an id."),
    Rule("FL210", "decision-without-default", "A decision needs a default branch."),
    Rule("FL211", "undeclared-field", "A stage uses a record field the process does not declare."),
    Rule("FL212", "field-type", "A field is used where its type does not fit."),
    Rule("FL213", "bad-duration", "A duration is not valid."),
    Rule("FL214", "unknown-phase", "A stage names a phase the process does not declare."),
    Rule("FL215", "unknown-process", "A subprocess names a process not among the linted files."),
    Rule("FL216", "subprocess-mapping", "Subprocess inputs or results do not match the child."),
    Rule("FL217", "bad-escalation", "An escalation cannot be carried out as written."),
    Rule("FL218", "approval-without-reject", "An approval offers no way to reject.", _W),
    Rule("FL219", "single-branch-decision", "A decision always leads to the same stage.", _W),
    Rule("FL220", "empty-phase", "A declared phase has no stages.", _W),
    Rule("FL221", "approval-policy", "The approval policy does not fit its approvers."),
    Rule("FL222", "wait-spec", "A wait stage needs exactly one of `for` and `until`."),
    Rule("FL223", "automatic-cycle", "Decisions form a loop that no person can break."),
    Rule("FL224", "duplicate-process", "Two files define the same process id."),
    Rule("FL225", "bad-relation", "An assignee relation names something it cannot follow."),
    Rule("FL226", "bad-calendar", "The business-hours calendar is not valid."),
    Rule("FL235", "decided-field-changed",
         "A field a decision reads can be changed after it without deciding again.", _W),
    Rule("FL236", "approver-excluded",
         "A stage's only possible approver is excluded from it, or it allows and excludes"
         " the initiator at once."),
    Rule("FL250", "must-change-unsettable",
         "A field must change at a stage or result that cannot set it."),
    Rule("FL251", "rule-on-automatic-result",
         "`must_change` or `validate` on a result that is reported automatically."),
    Rule("FL252", "days-in-working-time",
         "A business-hours SLA counts `d` or `w` as 24 working hours a day.", _W),
    Rule("FL253", "bad-date-limit", "A date field's `minimum` or `maximum` is not a date limit."),
    Rule("FL254", "bad-pattern", "A field's `pattern` is not a valid regular expression."),
    Rule("FL255", "unused-default", "The process's `defaults.sla` is inherited by no stage."),
    Rule("FL270", "set-unknown-field",
         "A `set:` or a field default names a field the process does not declare."),
    Rule("FL271", "set-value-type",
         "A `set:` value or a field default does not fit the field's type."),
    Rule("FL272", "assignee-rule", "An assignee chosen by a record field cannot work as written."),
    Rule("FL280", "key-does-nothing", "A stage has a key its kind never uses."),
    Rule("FL281", "bad-blocks", "A task blocks a result its stage does not have."),
    Rule("FL282", "template-unknown-name", "A notify template names a value that is not there."),
    Rule("FL283", "notify-event-never",
         "A stage's notify names an event that never happens there."),
    # conditions
    Rule("FL290", "parallel-without-join", "A parallel stage has no join, or more than one."),
    Rule("FL291", "join-without-fork", "A join names no parallel stage as its fork."),
    Rule("FL292", "branch-leaves", "A stage of a parallel branch leads outside its branch."),
    Rule("FL293", "branch-never-joins", "A parallel branch can never reach its join."),
    Rule("FL294", "nested-parallel", "A parallel stage inside a branch of another."),
    Rule("FL295", "join-count", "A join waits for more branches than its fork has."),
    Rule("FL301", "condition-syntax", "A condition does not parse."),
    Rule("FL302", "condition-construct", "A condition uses a construct the language lacks."),
    Rule("FL303", "condition-unknown-field", "A condition reads an undeclared field."),
    Rule("FL304", "condition-type", "A condition uses a value where its type does not fit."),
    Rule("FL305", "condition-enum-value", "A condition uses a value that does not fit its field."),
    Rule("FL306", "condition-too-complex", "A condition is too long or nested too deeply."),
    # org directory
    Rule("FL401", "unknown-user", "A user is not in the org directory."),
    Rule("FL402", "unknown-role", "A role is not in the org directory."),
    Rule("FL403", "unknown-department", "A department is not in the org directory."),
    Rule("FL404", "no-org-directory", "No org directory: references unchecked.", _W),
    Rule("FL405", "org-integrity", "The org directory contradicts itself."),
    Rule("FL406", "several-org-directories", "More than one org directory among the linted files."),
]

RULES: dict[str, Rule] = {r.code: r for r in _ALL}

# Input that could not be read at all: lint exits 2, as for a usage error.
UNREADABLE = frozenset({"FL013"})


def rule(code: str) -> Rule:
    """The rule for ``code``; unknown codes get a generic entry."""
    return RULES.get(code) or Rule(code, code.lower(), code)
