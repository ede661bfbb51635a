"""Docs that cannot rot: generated pages are current, and every command is
in the README."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_rules_page_is_current() -> None:
    gen = runpy.run_path(str(ROOT / "scripts" / "gen_rules_doc.py"), run_name="gen")
    current = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert current == gen["render"](), "run `python scripts/gen_rules_doc.py`"


def test_every_rule_is_documented_with_an_anchor() -> None:
    from flowctl.rules import RULES

    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for code in RULES:
        assert f'<a id="{code.lower()}"></a>' in page
