"""The operator commands end to end: the real entry point in-process, a SQLite database in
tmp_path, the example processes in processes/ and FLOWCTL_NOW for fixed times.
Every example process is run through every branch it has today."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke, trust_workspace
from typer.testing import Result

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
NOW = "2026-11-23T09:00:00Z"




class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.db = str(tmp_path / "flowctl.db")
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": self.db,
            "FLOWCTL_PROCESSES": PROCESSES,
            "FLOWCTL_NOW": NOW,
            "FLOWCTL_ORG": None,
            "FLOWCTL_USER": None,
            "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, user: str | None = "alice", now: str = NOW,
                 code: int = 0) -> Result:
        env = {**self.env, "FLOWCTL_USER": user, "FLOWCTL_NOW": now}
        result = invoke(list(args), env=env)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    def out(self, *args: str, user: str | None = "alice", now: str = NOW) -> list[str]:
        result = self(*args, user=user, now=now)
        assert result.stderr == ""
        return result.stdout.splitlines()

    def refused(self, *args: str, code: int, user: str = "alice") -> str:
        result = self(*args, user=user, code=code)
        assert result.stdout == ""
        return result.stderr

    def journal(self, instance: str) -> list[dict[str, Any]]:
        # grace: an admin sees every instance
        entries: list[dict[str, Any]] = json.loads(
            self("journal", instance, "--json", user="grace").stdout)
        return entries

    def kinds(self, instance: str) -> list[tuple[str, str | None, str | None]]:
        return [(e["kind"], e["stage"], e["result"]) for e in self.journal(instance)]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


KEY = "key-account-filing-approval"
K1 = f"{KEY}-1"


# ----------------------------------------- key-account-filing-approval


def test_key_path_from_start_to_completed(cli: Cli) -> None:
    assert cli.out("start", KEY, "--set", "owner=alice") == [
        f"{K1}: started {KEY} (definition {_digest(KEY)[:12]})",
        f"{K1}: at 'edit-customer', waiting for alice (initiator)",
    ]
    assert cli.kinds(K1) == [("started", None, None), ("stage_entered", "edit-customer", None)]
    assert cli.out("advance", K1, "--result", "done", "--set", "level=key") == [
        f"{K1}: result done at 'edit-customer'",
        f"{K1}: decision 'check-level': record.level == \"key\" (level=key) -> level-approval",
        f"{K1}: at 'level-approval', waiting for carol (head of sales), due 2026-11-24T09:00:00Z",
    ]
    assert cli.kinds(K1)[2:] == [
        ("field_changed", "edit-customer", None),
        ("result", "edit-customer", "done"),
        ("decision", "check-level", None),
        ("stage_entered", "level-approval", None),
    ]
    decision = cli.journal(K1)[4]
    assert decision["data"] == {
        "branch": 1, "when": 'record.level == "key"', "to": "level-approval",
        "values": {"level": "key"},
    }
    assert cli.out("inbox", user="carol") == [
        "INSTANCE                       STAGE           STATE        DUE                   PROCESS",
        f"{K1}  level-approval  not started  2026-11-24T09:00:00Z"
        "  大客户备案审批流程 (Key Account Filing Approval)",
        "1 unread notification (flowctl notifications)",
    ]
    assert cli.out("advance", K1, "-r", "approve", user="carol",
                   now="2026-11-23T15:00:00Z") == [
        f"{K1}: result approve at 'level-approval'",
        f"{K1}: at 'change-owner', waiting for carol (head of sales)",
    ]
    assert cli.out("advance", K1, "-r", "done", "--set", "owner=bob", user="carol",
                   now="2026-11-23T16:00:00Z") == [
        f"{K1}: result done at 'change-owner'",
        f"{K1}: completed at 'end' (outcome: completed)",
    ]
    assert cli.kinds(K1)[6:] == [
        ("field_changed", "level-approval", None),  # set: approved_by: actor
        ("result", "level-approval", "approve"),
        ("field_changed", "change-owner", None),  # set: previous_owner: {field: owner}
        ("stage_entered", "change-owner", None),
        ("field_changed", "change-owner", None),
        ("result", "change-owner", "done"),
        ("completed", "end", None),
    ]
    assert [e["version"] for e in cli.journal(K1)] == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4]
    assert cli.out("inbox", user="carol") == [
        "nothing waits for carol", "1 unread notification (flowctl notifications)",
    ]
    assert cli.out("show", K1) == [
        K1,
        f"  process:     {KEY}: 大客户备案审批流程 (Key Account Filing Approval)"
        f" (definition {_digest(KEY)[:12]})",
        "  status:      completed (version 4), outcome completed",
        "  initiator:   alice",
        "  started:     2026-11-23T09:00:00Z",
        "  stage:       end (finished)",
        "  waiting for: -",
        "  due:         -",
        "  parent:      -",
        "fields:",
        "  level (Customer level): key",
        "  type (Customer type): -",
        "  note (Note): -",
        "  owner (Owner): bob",
        "  previous_owner (Previous owner): alice",
        "  approved_by (Level approved by): carol",
        "note:",
        "  -",
        "links:",
        "  -",
        "attachments:",
        "  -",
        "history:",
        "  2026-11-23T09:00:00Z  v1  alice  started  key-account-filing-approval owner=alice",
        "  2026-11-23T09:00:00Z  v1  alice  stage_entered  'edit-customer' for alice",
        "  2026-11-23T09:00:00Z  v2  alice  field_changed  level: - -> key",
        "  2026-11-23T09:00:00Z  v2  alice  result  done at 'edit-customer'",
        "  2026-11-23T09:00:00Z  v2  alice  decision  'check-level': record.level == \"key\""
        " (level=key) -> level-approval",
        "  2026-11-23T09:00:00Z  v2  alice  stage_entered  'level-approval' for carol,"
        " due 2026-11-24T09:00:00Z",
        "  2026-11-23T15:00:00Z  v3  carol  field_changed  approved_by: - -> carol"
        " (set with result 'approve': actor)",
        "  2026-11-23T15:00:00Z  v3  carol  result  approve at 'level-approval'",
        "  2026-11-23T15:00:00Z  v3  carol  field_changed  previous_owner: - -> alice"
        " (set on entering 'change-owner': record.owner)",
        "  2026-11-23T15:00:00Z  v3  carol  stage_entered  'change-owner' for carol",
        "  2026-11-23T16:00:00Z  v4  carol  field_changed  owner: alice -> bob",
        "  2026-11-23T16:00:00Z  v4  carol  result  done at 'change-owner'",
        "  2026-11-23T16:00:00Z  v4  carol  completed  at 'end' (outcome: completed)",
    ]
    assert cli.refused("advance", K1, "-r", "done", code=1) == (
        f"flowctl: error: instance {K1} is completed; nothing can be advanced\n"
    )


def _digest(process: str) -> str:
    import hashlib

    return hashlib.sha256((Path(PROCESSES) / f"{process}.yaml").read_bytes()).hexdigest()


def test_key_normal_path_ends_after_check_level(cli: Cli) -> None:
    cli("start", KEY, user="bob")
    assert cli.out("advance", K1, "-r", "done", "--set", "level=normal", user="bob") == [
        f"{K1}: result done at 'edit-customer'",
        f"{K1}: decision 'check-level': no branch applies (level=normal) -> end",
        f"{K1}: completed at 'end' (outcome: completed)",
    ]
    assert [k for k, _, _ in cli.kinds(K1)] == [
        "started", "stage_entered", "field_changed", "result", "decision", "completed",
    ]


def test_key_reject_goes_back_to_edit_customer(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=bob", user="bob")
    cli("advance", K1, "-r", "done", "--set", "level=key", user="bob")
    assert cli.out("advance", K1, "-r", "reject", "--comment", "not key", user="carol") == [
        f"{K1}: result reject at 'level-approval': not key",
        f"{K1}: at 'edit-customer', waiting for bob (initiator)",
    ]
    assert cli.kinds(K1)[-2:] == [
        ("result", "level-approval", "reject"), ("stage_entered", "edit-customer", None),
    ]
    cli("advance", K1, "-r", "done", "--set", "level=normal", user="bob")
    assert json.loads(cli("show", K1, "--json", user="bob").stdout)["instance"]["status"] \
        == "completed"


def test_key_without_owner_is_refused_at_the_approval(cli: Cli) -> None:
    cli("start", KEY)
    assert cli.refused("advance", K1, "-r", "done", "--set", "level=key", code=1) == (
        "flowctl: error: cannot find who handles stage 'level-approval': it depends on"
        " record.owner, which is empty\n"
        "flowctl: hint: set it with --set owner=USER\n"
    )
    assert cli.out("advance", K1, "-r", "done", "--set", "level=key", "--set", "owner=alice")[-1] \
        == f"{K1}: at 'level-approval', waiting for carol (head of sales), due 2026-11-24T09:00:00Z"


# ------------------------------------------------------------ refusals


def test_refusals_have_exact_messages_and_codes_and_write_nothing(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=alice")
    before = cli.journal(K1)
    cases: list[tuple[list[str], str, int, str]] = [
        (["advance", K1, "-r", "approve"], "alice", 1,
         "flowctl: error: result 'approve' is not allowed at stage 'edit-customer';"
         " allowed: done\n"),
        (["advance", K1, "-r", "done"], "alice", 1,
         "flowctl: error: field 'level' is required: one of normal, key\n"
         "flowctl: hint: add --set level=VALUE\n"),
        (["advance", K1, "-r", "done", "--set", "level=vip"], "alice", 2,
         "flowctl: error: field 'level' must be one of normal, key; got 'vip'\n"),
        (["advance", K1, "-r", "done", "--set", "level=key"], "bob", 1,
         "flowctl: error: only alice (initiator) can advance 'edit-customer'\n"
         "flowctl: hint: you are bob; ask alice (initiator), or an admin (grace)\n"),
        (["advance", K1, "-r", "done", "--set", "level"], "alice", 2,
         "flowctl: error: --set 'level' is not FIELD=VALUE\n"
         "flowctl: hint: e.g. --set level=key (quote values with spaces)\n"),
        (["advance", K1, "-r", "done", "--set", "colour=red"], "alice", 2,
         f"flowctl: error: process '{KEY}' has no field 'colour'; its fields:"
         " level, type, note, owner, previous_owner, approved_by\n"),
        (["advance", "nope-7", "-r", "done"], "alice", 2,
         "flowctl: error: no instance 'nope-7'\n"
         "flowctl: hint: `flowctl list` shows the instances"
         f" (the newest is {K1})\n"),
        (["advance", K1, "-r", "done", "--as", "zed"], "alice", 2,
         "flowctl: error: unknown user 'zed' (from --as): not in the org directory"
         f" {PROCESSES}/org.yaml; known users: grace, carol, alice, bob, frank, linda, oleg,"
         " dmitry\n"
         "flowctl: hint: say who you are with --as USER or FLOWCTL_USER=USER\n"),
        (["start", KEY], "frank", 1,
         f"flowctl: error: frank may not start '{KEY}'; it is started by: department sales\n"
         "flowctl: hint: you are frank; ask one of them to start it\n"),
        (["begin", K1], "carol", 1,
         "flowctl: error: only alice (initiator) can begin 'edit-customer'\n"
         "flowctl: hint: you are carol; ask alice (initiator), or an admin (grace)\n"),
        (["cancel", K1], "bob", 1,
         f"flowctl: error: only alice (initiator) or an admin can cancel {K1}\n"
         "flowctl: hint: you are bob; ask alice (initiator), or an admin (grace)\n"),
        (["start", "no-such-process"], "alice", 2,
         f"flowctl: error: no process 'no-such-process' in {PROCESSES}/ "
         "(from $FLOWCTL_PROCESSES) (known:"
         " contract-approval, deal-blueprint, goods-delivery, key-account-filing-approval,"
         " lost-customer-recovery)\n"
         "flowctl: hint: name a process id or a YAML file\n"),
    ]
    for args, user, code, stderr in cases:
        assert cli.refused(*args, user=user, code=code) == stderr, args
    assert cli.journal(K1) == before
    assert len(json.loads(cli("list", "--json").stdout)) == 1


def test_expect_version_exactly_one_of_two_wins(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=alice")
    cli("advance", K1, "-r", "done", "--set", "level=key")
    first = cli("advance", K1, "-r", "approve", "--expect-version", "2", user="carol")
    assert first.stdout.splitlines()[0] == f"{K1}: result approve at 'level-approval'"
    assert cli.refused("advance", K1, "-r", "approve", "--expect-version", "2", user="carol",
                       code=5) == (
        f"flowctl: error: instance {K1} is at version 3, not 2 (--expect-version);"
        " nothing was written\n"
        f"flowctl: hint: look at it again (flowctl show {K1}) and retry\n"
    )
    results = [e for e in cli.journal(K1) if e["kind"] == "result"]
    assert [(e["stage"], e["result"]) for e in results] == [
        ("edit-customer", "done"), ("level-approval", "approve"),
    ]


def test_a_database_that_is_not_flowctls_is_a_store_error(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    result = cli("list", "--db", str(bad), code=4)
    assert result.stderr.startswith("flowctl: error: ")


def test_the_database_is_created_under_the_current_folder(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trust_workspace(tmp_path)
    cli.env["FLOWCTL_DB"] = None
    cli("start", KEY)
    assert (tmp_path / ".flowctl" / "flowctl.db").is_file()
    assert cli.out("list", "--db", ".flowctl/flowctl.db")[1].startswith(f"{K1}  active")


# --------------------------------------------------- contract-approval

C1 = "contract-approval-1"
CONTRACT = ["start", "contract-approval", "--set", "customer=Acme"]


def _submit(cli: Cli, amount: str, score: str, term: str) -> None:
    cli(*CONTRACT, "--set", f"amount={amount}", "--set", f"credit_score={score}",
        "--set", f"term_months={term}")
    assert cli.out("advance", C1, "-r", "submit")[-1] == (
        f"{C1}: at 'manager-review', waiting for a sales-manager (carol),"
        " due 2026-11-30T12:00:00Z"
    )


def test_contract_small_and_sound_needs_only_the_manager(cli: Cli) -> None:
    _submit(cli, "50000", "90", "12")
    assert cli.out("advance", C1, "-r", "approve", user="carol") == [
        f"{C1}: result approve at 'manager-review'",
        f"{C1}: joined 'reviews-done' is complete: no branch was started; on to 'approved'",
        f"{C1}: completed at 'approved' (outcome: approved)",
    ]
    entered = [e for e in cli.journal(C1) if e["stage"] == "reviews"][0]
    assert entered["data"] == {
        "branches": [], "complete": "all", "join": "reviews-done", "needed": 0,
        "skipped": {"finance": "record.credit_score < 70", "legal": "record.term_months > 12",
                    "general-manager": "record.amount > 100000"},
        "values": {"credit_score": 90, "term_months": 12, "amount": 50000},
    }


REVIEWS = [
    f"{C1}: at 'reviews', 3 of 3 branches running",
    f"{C1}:   branch finance: at 'finance-review', waiting for a finance-reviewer (frank),"
    " due 2026-11-30T12:00:00Z",
    f"{C1}:   branch legal: at 'legal-review', waiting for a legal-reviewer (linda),"
    " due 2026-11-30T12:00:00Z",
    f"{C1}:   branch general-manager: at 'executive-signature', waiting for a general-manager"
    " (grace) or frank (head of finance), due 2026-11-28T09:00:00Z",
]


def test_contract_reviews_run_at_the_same_time(cli: Cli) -> None:
    _submit(cli, "250000", "60", "24")
    assert cli.out("advance", C1, "-r", "approve", user="carol") == [
        f"{C1}: result approve at 'manager-review'", *REVIEWS,
    ]
    # frank holds two of the three active stages: he names the one he means
    assert cli.refused("advance", C1, "-r", "approve", user="frank", code=1) == (
        f"flowctl: error: {C1} has 3 active stages (frank holds 2 of them): 'finance-review'"
        " (branch finance, a finance-reviewer (frank)); 'legal-review' (branch legal, a"
        " legal-reviewer (linda)); 'executive-signature' (branch general-manager, a"
        " general-manager (grace) or frank (head of finance)); name the one you mean\n"
        "flowctl: hint: add --stage STAGE, e.g. --stage finance-review\n"
    )
    assert cli.refused("advance", C1, "-r", "approve", "--stage", "submit", user="frank",
                       code=1).startswith(
        "flowctl: error: stage 'submit' cannot be advanced: it is not an active stage of"
        f" {C1}; active stages: 'finance-review' (branch finance,"
    )
    # legal needs no --stage: linda holds one of them
    assert cli.out("advance", C1, "-r", "approve", user="linda") == [
        f"{C1}: result approve at 'legal-review' [branch legal]",
        f"{C1}: branch_joined branch legal reached the join 'reviews-done' (1 of 3 needed)",
        f"{C1}: at 'reviews', 2 of 3 branches running", REVIEWS[1], REVIEWS[3],
    ]
    assert cli.out("advance", C1, "-r", "approve", "--stage", "executive-signature",
                   user="frank") == [
        f"{C1}: vote approve at 'executive-signature'; still to sign: any general-manager"
        " [branch general-manager]",
        f"{C1}: at 'reviews', 2 of 3 branches running", REVIEWS[1],
        f"{C1}:   branch general-manager: at 'executive-signature', waiting for a"
        " general-manager (grace), due 2026-11-28T09:00:00Z",
    ]
    assert cli.refused("advance", C1, "-r", "approve", "--stage", "executive-signature",
                       user="frank", code=1) == (
        "flowctl: error: frank has already approved 'executive-signature'; every approver signs"
        " once; still waiting for: a general-manager (grace)\n"
    )
    assert cli.out("inbox", user="frank")[:2] == [
        "INSTANCE             STAGE                            STATE        DUE"
        "                   PROCESS",
        f"{C1}  finance-review (branch finance)  not started  2026-11-30T12:00:00Z"
        "  Contract Approval",
    ]
    assert cli.out("inbox", user="grace")[1].startswith(
        f"{C1}  executive-signature (branch general-manager)  in progress")
    card = cli.out("show", C1)
    at = card.index("branches:")
    assert card[at:at + 4] == [
        "branches:",
        "  finance: at 'finance-review', waiting for a finance-reviewer (frank),"
        " due 2026-11-30T12:00:00Z",
        "  legal: done, at the join 'reviews-done'",
        "  general-manager: at 'executive-signature', waiting for a general-manager (grace),"
        " due 2026-11-28T09:00:00Z",
    ]
    assert cli.out("advance", C1, "-r", "approve", user="frank")[0] == (
        f"{C1}: result approve at 'finance-review' [branch finance]"
    )
    assert cli.out("advance", C1, "-r", "approve", user="grace") == [
        f"{C1}: vote approve at 'executive-signature' [branch general-manager]",
        f"{C1}: result approve at 'executive-signature' [branch general-manager]",
        f"{C1}: branch_joined branch general-manager reached the join 'reviews-done'"
        " (3 of 3 needed)",
        f"{C1}: joined 'reviews-done' is complete: finance, legal and general-manager reached"
        " it; on to 'approved'",
        f"{C1}: completed at 'approved' (outcome: approved)",
    ]
    journal = cli.journal(C1)
    votes = [e for e in journal if e["kind"] == "vote"]
    assert [(e["actor"], e["data"]["for"], e["data"]["pending"], e["data"]["branch"])
            for e in votes] == [
        ("frank", "user:frank", ["role:general-manager"], "general-manager"),
        ("grace", "role:general-manager", [], "general-manager"),
    ]
    branch_of = {(e["kind"], e["stage"]): e["data"].get("branch") for e in journal}
    assert branch_of[("stage_entered", "finance-review")] == "finance"
    assert branch_of[("stage_entered", "legal-review")] == "legal"
    assert branch_of[("result", "legal-review")] == "legal"
    assert branch_of[("stage_entered", "reviews")] is None
    assert journal[-2]["data"] == {
        "branches": ["finance", "legal", "general-manager"], "complete": "all",
        "to": "approved",
    }


def test_contract_one_reject_cancels_the_other_reviews(cli: Cli) -> None:
    _submit(cli, "150000", "60", "6")
    assert cli.out("advance", C1, "-r", "approve", user="carol")[1:] == [
        f"{C1}: at 'reviews', 2 of 2 branches running", REVIEWS[1], REVIEWS[3],
    ]
    cli("advance", C1, "-r", "approve", user="grace")
    assert cli.out("advance", C1, "-r", "reject", "--stage", "executive-signature",
                   "--set", "rejection_reason=too long", user="frank") == [
        f"{C1}: vote reject at 'executive-signature' [branch general-manager]",
        f"{C1}: result reject at 'executive-signature' [branch general-manager]",
        f"{C1}: branch_ended branch general-manager reached the end 'rejected' (outcome:"
        " rejected); by the join's policy (cancel-others) the branches still open are"
        " cancelled",
        f"{C1}: branch_cancelled branch finance was cancelled at 'finance-review': branch"
        " 'general-manager' reached the end stage 'rejected'",
        f"{C1}: completed at 'rejected' (outcome: rejected)",
    ]
    assert cli.kinds(C1)[-6:] == [
        ("field_changed", "executive-signature", None),
        ("vote", "executive-signature", "reject"),
        ("result", "executive-signature", "reject"),
        ("branch_ended", "rejected", None),
        ("branch_cancelled", "finance-review", None),
        ("completed", "rejected", None),
    ]
    assert cli.out("inbox", user="frank")[0] == "nothing waits for frank"


def test_contract_manager_sends_it_back_then_rep_withdraws(cli: Cli) -> None:
    _submit(cli, "1000", "50", "3")
    assert cli.refused("advance", C1, "-r", "reject", user="carol", code=1) == (
        "flowctl: error: field 'rejection_reason' is required: text\n"
        "flowctl: hint: add --set rejection_reason=VALUE\n"
    )
    assert cli.out("advance", C1, "-r", "reject", "--set", "rejection_reason=score",
                   user="carol")[-1] == f"{C1}: at 'submit', waiting for alice (initiator)"
    assert cli.out("advance", C1, "-r", "withdraw") == [
        f"{C1}: result withdraw at 'submit'",
        f"{C1}: completed at 'withdrawn' (outcome: cancelled)",
    ]


def test_contract_legal_reject_and_admin_acting(cli: Cli) -> None:
    _submit(cli, "1000", "90", "36")
    assert cli.out("advance", C1, "-r", "approve", user="grace")[0] == (
        f"{C1}: result approve at 'manager-review' [as admin]"
    )
    assert cli.out("advance", C1, "-r", "reject", "--set", "rejection_reason=term",
                   user="linda")[-1] == f"{C1}: completed at 'rejected' (outcome: rejected)"
    assert cli.journal(C1)[4]["data"] == {"as_admin": True}


# ---------------------------------------------- lost-customer-recovery

L1 = "lost-customer-recovery-1"


def _offer(cli: Cli) -> None:
    cli("start", "lost-customer-recovery", "--set", "owner=bob", "--set", "customer=Acme")
    cli("advance", L1, "-r", "reached", user="bob")
    assert cli.out("advance", L1, "-r", "done", "--set", "reason=price", user="bob") == [
        f"{L1}: result done at 'record-reason'",
        f"{L1}: event offer-prepared: Offer preparation started",
        f"{L1}: task_created 'check-prices' Check the current price list for bob"
        " (needed before accepted)",
        f"{L1}: task_scheduled 'ask-manager' Ask the sales manager about a discount for any"
        " sales-manager, appears 2026-11-23T10:00:00Z",
        f"{L1}: at 'prepare-offer', waiting for bob (record.owner)",
    ]
    assert cli.refused("advance", L1, "-r", "accepted", "--set", "offer_amount=1", user="bob",
                       code=1) == (
        f"flowctl: error: stage 'prepare-offer' of {L1} cannot take result 'accepted': blocking"
        " task not done: check-prices (Check the current price list; bob)\n"
        f"flowctl: hint: finish it first: flowctl task done {L1} check-prices\n"
    )
    assert cli.out("task", "done", L1, "check-prices", user="bob") == [
        f"{L1}: task_done 'check-prices' Check the current price list",
        f"{L1}: at 'prepare-offer', waiting for bob (record.owner)",
    ]


def test_lost_customer_paid_starts_the_delivery_child_and_is_won(cli: Cli) -> None:
    _offer(cli)
    assert cli.out("advance", L1, "-r", "accepted", "--set", "offer_amount=900", user="bob") == [
        f"{L1}: result accepted at 'prepare-offer'",
        f"{L1}: at 'await-payment', waiting for a finance-reviewer (frank),"
        " due 2026-11-30T09:00:00Z",
    ]
    assert cli.out("advance", L1, "-r", "paid", "--set", "order_ref=O-1", "--set",
                   "delivery_address=Kazan", "--set", "ship_date=2026-12-05", user="frank") == [
        f"{L1}: result paid at 'await-payment'",
        f"{L1}: child_started goods-delivery-1 (goods-delivery), runs on its own",
        "goods-delivery-1: started goods-delivery order_ref=O-1 address=Kazan"
        " ship_date=2026-12-05",
        f"{L1}: completed at 'won' (outcome: completed)",
    ]
    entered = [e for e in cli.journal(L1) if e["stage"] == "delivery"]
    assert entered[0]["data"] == {
        "child_needed": "goods-delivery",
        "inputs": {"order_ref": "O-1", "address": "Kazan", "ship_date": "2026-12-05"},
        "wait": False,
    }
    card = json.loads(cli("show", L1, "--json").stdout)
    assert card["instance"]["children"] == [{
        "process": "goods-delivery", "stage": "delivery", "status": "running", "wait": False,
        "inputs": {"order_ref": "O-1", "address": "Kazan", "ship_date": "2026-12-05"},
        "instance_id": "goods-delivery-1", "end": None,
    }]
    assert [c["id"] for c in card["children"]] == ["goods-delivery-1"]
    assert cli.out("show", L1)[9] == (
        "  child:       goods-delivery-1 (goods-delivery) from 'delivery', runs on its own:"
        " at 'prepare-documents', waiting for a logistics (oleg, dmitry)"
    )
    assert cli.out("show", "goods-delivery-1")[8] == f"  parent:      {L1}"


def test_lost_customer_wants_time_pauses_thirty_days(cli: Cli) -> None:
    _offer(cli)
    assert cli.out("advance", L1, "-r", "wants-time", "--set", "offer_amount=900",
                   user="bob")[-1] == f"{L1}: waiting at 'pause' until 2026-12-23T09:00:00Z"
    card = json.loads(cli("show", L1, "--json").stdout)["instance"]
    assert (card["status"], card["wake_at"], card["timers"]) == (
        "waiting", "2026-12-23T09:00:00Z",
        [{"kind": "wake", "at": "2026-12-23T09:00:00Z", "stage": "pause", "index": 0,
          "key": "wake:pause:0:v5"}],
    )
    assert cli.out("list", "--status", "waiting") == [
        "INSTANCE                  STATUS   STAGE  WAITING FOR / OUTCOME       DUE  STARTED",
        f"{L1}  waiting  pause  until 2026-12-23T09:00:00Z  -    2026-11-23T09:00:00Z",
    ]


def test_lost_customer_declined_unpaid_and_unreachable_are_lost(cli: Cli) -> None:
    _offer(cli)
    assert cli.out("advance", L1, "-r", "declined", "--set", "offer_amount=1",
                   user="bob")[-1] == f"{L1}: completed at 'lost' (outcome: rejected)"
    cli("start", "lost-customer-recovery", "--set", "owner=bob", "--set", "customer=B")
    assert cli.out("advance", "lost-customer-recovery-2", "-r", "unreachable", user="bob")[-1] \
        == "lost-customer-recovery-2: completed at 'lost' (outcome: rejected)"
    cli("start", "lost-customer-recovery", "--set", "owner=bob", "--set", "customer=C")
    l3 = "lost-customer-recovery-3"
    cli("advance", l3, "-r", "reached", user="bob")
    cli("advance", l3, "-r", "done", "--set", "reason=other", user="bob")
    cli("task", "done", l3, "check-prices", user="bob")
    cli("advance", l3, "-r", "accepted", "--set", "offer_amount=5", user="bob")
    # the fields of 'paid' are not set with 'unpaid'
    assert cli.out("advance", l3, "-r", "unpaid", user="frank")[-1] == (
        f"{l3}: completed at 'lost' (outcome: rejected)"
    )


# ------------------------------------------------------ goods-delivery


def test_goods_delivery_documents_then_waits_for_the_ship_date(cli: Cli) -> None:
    g1 = "goods-delivery-1"
    assert cli.out("start", "goods-delivery", user="oleg")[-1] == (
        f"{g1}: at 'prepare-documents', waiting for a logistics (oleg, dmitry)"
    )
    assert cli.out("begin", g1, user="dmitry") == [
        f"{g1}: began 'prepare-documents'",
        f"{g1}: at 'prepare-documents', waiting for a logistics (oleg, dmitry)",
    ]
    assert cli.out("reassign", g1, "dmitry", user="oleg") == [
        f"{g1}: reassigned 'prepare-documents' from any logistics to dmitry",
        f"{g1}: at 'prepare-documents', waiting for dmitry (reassigned by oleg)",
    ]
    assert cli.out("advance", g1, "-r", "done", "--set", "order_ref=O-1", "--set",
                   "address=Omsk", "--set", "carrier=post", "--set", "ship_date=2026-12-01",
                   user="dmitry")[-1] == (
        f"{g1}: waiting at 'wait-ship-date' until 2026-12-01T00:00:00Z"
    )


# ----------------------------------------------- note, link, cancel, reads


def test_note_link_cancel_and_show(cli: Cli) -> None:
    cli("start", KEY, "--note", "met at the fair")
    assert cli.out("note", K1, "call back Friday", "--append", user="grace") == [
        f"{K1}: note appended: call back Friday",
        f"{K1}: at 'edit-customer', waiting for alice (initiator)",
    ]
    assert cli.out("link", K1, "contract", "C-2026-118")[0] == (
        f"{K1}: link contract C-2026-118"
    )
    assert cli.refused("link", K1, "contract", "C-2026-118", code=1) == (
        f"flowctl: error: {K1} is already linked to contract C-2026-118\n"
    )
    assert cli.out("cancel", K1, "--reason", "duplicate", user="grace") == [
        f"{K1}: cancelled at 'edit-customer' (outcome: cancelled)",
    ]
    lines = cli.out("show", K1)
    assert lines[lines.index("note:") + 1:lines.index("links:") + 2] == [
        "  met at the fair", "  call back Friday", "links:",
        "  contract C-2026-118 (by alice, 2026-11-23T09:00:00Z)",
    ]
    assert lines[-1] == (
        "  2026-11-23T09:00:00Z  v4  grace  cancelled  at 'edit-customer': duplicate [as admin]"
    )
    assert cli.kinds(K1)[2:] == [
        ("note", "edit-customer", None), ("link", "edit-customer", None),
        ("cancelled", "edit-customer", None),
    ]


def test_list_filters_and_json(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=alice", now="2026-11-20T09:00:00Z")
    cli("advance", K1, "-r", "done", "--set", "level=key", now="2026-11-20T09:00:00Z")
    cli("start", KEY, user="bob", now="2026-11-22T09:00:00Z")
    cli("start", "contract-approval", now="2026-11-23T09:00:00Z")
    # alice sees what she started; bob's instance is not hers to see
    assert [line.split()[0] for line in cli.out("list")[1:]] == ["contract-approval-1", K1]
    assert cli.out("list", user="grace") == [  # an admin sees every instance
        "INSTANCE                       STATUS  STAGE           WAITING FOR / OUTCOME"
        "  DUE                           STARTED",
        "contract-approval-1            active  submit          alice (initiator)"
        "      -                             2026-11-23T09:00:00Z",
        "key-account-filing-approval-2  active  edit-customer   bob (initiator)"
        "        -                             2026-11-22T09:00:00Z",
        "key-account-filing-approval-1  active  level-approval  carol (head of sales)"
        "  2026-11-21T09:00:00Z OVERDUE  2026-11-20T09:00:00Z",
    ]
    assert cli.out("list", "--assignee", "carol")[1].startswith(K1)
    assert len(cli.out("list", "--since", "2026-11-22", user="grace")) == 3
    assert len(cli.out("list", "--process", KEY, "-n", "1")) == 2
    assert cli.out("list", "--status", "completed") == ["no instances"]
    data = json.loads(cli("list", "--json", "--process", "contract-approval").stdout)
    assert [(d["id"], d["stage"], d["assignees"]) for d in data] == [
        ("contract-approval-1", "submit", ["user:alice"]),
    ]
    inbox = json.loads(cli("inbox", "--json", user="carol").stdout)
    assert [(d["id"], d["overdue"], d["due_at"]) for d in inbox] == [
        (K1, True, "2026-11-21T09:00:00Z"),
    ]
    assert cli.refused("list", "--status", "open", code=2) == (
        "flowctl: error: unknown status 'open'; statuses: active, waiting, paused, completed,"
        " cancelled\n"
    )


def test_journal_formats_and_filters(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=alice", now="2026-11-20T09:00:00Z")
    cli("advance", K1, "-r", "done", "--set", "level=key", now="2026-11-21T09:00:00Z")
    cli("advance", K1, "-r", "approve", user="carol", now="2026-11-22T09:00:00Z")
    lines = cli.out("journal")
    assert lines[0] == (
        f"1  2026-11-20T09:00:00Z  {K1}  v1  alice  started  {KEY} owner=alice"
    )
    assert len(lines) == 10
    assert cli.out("journal", "--actor", "carol") == [
        f"7  2026-11-22T09:00:00Z  {K1}  v3  carol  field_changed  approved_by: - -> carol"
        " (set with result 'approve': actor)",
        f"8  2026-11-22T09:00:00Z  {K1}  v3  carol  result  approve at 'level-approval'",
        f"9  2026-11-22T09:00:00Z  {K1}  v3  carol  field_changed  previous_owner: - -> alice"
        " (set on entering 'change-owner': record.owner)",
        f"10  2026-11-22T09:00:00Z  {K1}  v3  carol  stage_entered  'change-owner' for carol",
    ]
    assert len(cli.out("journal", "--since", "2026-11-21", "--until", "2026-11-22")) == 4
    assert len(cli.out("journal", "--process", "contract-approval")) == 0
    csv_lines = cli.out("journal", K1, "--format", "csv")
    assert csv_lines[0] == "seq,at,instance,version,actor,kind,stage,result,data,hash"
    assert csv_lines[8].startswith(
        f"8,2026-11-22T09:00:00Z,{K1},3,carol,result,level-approval,approve,{{}},"
    )
    raw = cli("journal", "--format", "json").stdout
    assert raw.startswith("[\n{")
    assert raw.endswith("}\n]\n")
    assert len(raw.splitlines()) == 12  # one entry per line between the brackets
    entries = json.loads(raw)
    assert [e["seq"] for e in entries] == list(range(1, 11))
    assert set(entries[0]) == {
        "seq", "at", "instance", "version", "actor", "kind", "stage", "result", "data", "hash",
    }
    assert cli("journal", "--process", "contract-approval", "--json").stdout == "[\n]\n"
    assert cli.refused("journal", "nope-1", code=2).startswith("flowctl: error: no instance")


def test_journal_verify_intact_and_broken(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=alice")
    cli("advance", K1, "-r", "done", "--set", "level=key")
    assert cli.out("journal", "verify", user=None) == [
        "journal intact: 6 entries, hash chain verified",
    ]
    assert json.loads(cli("journal", "verify", "--json").stdout) == {
        "ok": True, "entries": 6, "problems": [],
    }
    conn = sqlite3.connect(cli.db)
    conn.execute("DROP TRIGGER journal_no_update")
    conn.execute("UPDATE journal SET actor = 'mallory' WHERE seq = 3")
    conn.commit()
    conn.close()
    result = cli("journal", "verify", code=1)
    lines = result.stdout.splitlines()
    assert lines[0] == "journal BROKEN: 2 problem(s) in 6 entries"
    assert lines[1].startswith("  the append-only trigger journal_no_update is missing")
    assert lines[2].startswith("  entry 3")


# --------------------------------------------------------------- help

COMMANDS = ["start", "advance", "begin", "reassign", "note", "link", "cancel", "show", "inbox",
            "list", "journal", "tick", "overdue", "pause", "resume", "task done", "task list",
            "notifications", "notifications read", "notifications deliver", "journal verify",
            "journal checkpoint", "db", "db repair", "db migrate", "db copy", "db grant"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_summary_and_examples(cli: Cli, command: str) -> None:
    result = cli(*command.split(), "--help")
    assert "Examples:" in result.stdout
    assert f"flowctl {command}" in result.stdout.split("Examples:")[1]


def test_identity_comes_from_the_environment_or_as(cli: Cli) -> None:
    cli("start", KEY, user="bob")
    assert cli.out("inbox", user="bob")[1].startswith(K1)
    assert cli.out("inbox", "--as", "alice", user="bob") == ["nothing waits for alice"]


def test_the_console_session_in_the_operators_guide_is_what_flowctl_prints(cli: Cli) -> None:
    import re
    import shlex

    text = (ROOT / "docs" / "operators.md").read_text("utf-8")
    # the guide's walk-through is its first console block (later ones have tests of their own)
    session = re.findall(r"```console\n(.*?)```", text, flags=re.S)[0]
    blocks = session.strip().split("\n\n")
    assert len(blocks) == 5
    for block in blocks:
        lines = [line for line in block.splitlines() if not line.startswith("$ export")]
        command, *expected = lines
        args = shlex.split(command.removeprefix("$ flowctl "))
        assert [_no_digest(line) for line in cli.out(*args)] == [
            _no_digest(line) for line in expected
        ], command


def _no_digest(line: str) -> str:
    """The digest changes with every edit of the YAML; the rest must not."""
    import re

    return re.sub(r"\(definition [0-9a-f]{12}\)", "(definition ...)", line)
