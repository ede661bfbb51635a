"""The ~10k-entry store of benchmark row 13: bench/gen_journal.py's year of
work on fewer instances, run on today's example processes.

    python bench/gen_small_journal.py DB [--instances 500]

The same generator as the 1M-entry store (bench/gen_journal.py, whose text
keys that cached store, so it is not edited here), with one adaptation: a
step at a contract whose parallel branches (finance review, executive
signature) are both open names the branch, the first whose stage takes the
result, as an operator does with --stage.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import gen_journal

from flowctl.errors import FlowctlError

_plain = gen_journal.runtime.advance
_STAGES = re.compile(r"'([a-z0-9-]+)' \(branch")


def advance(instance: str, **kw: Any) -> Any:
    try:
        return _plain(instance, **kw)
    except FlowctlError as exc:
        stages = _STAGES.findall(exc.message)
        if not stages or kw.get("stage"):
            raise
        for stage in stages:
            try:
                return _plain(instance, stage=stage, **kw)
            except FlowctlError:
                continue
        raise


gen_journal.runtime.advance = advance  # type: ignore[assignment]

if __name__ == "__main__":
    if "--instances" not in sys.argv:
        sys.argv += ["--instances", "500"]
    gen_journal.main()
