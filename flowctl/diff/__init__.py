"""What changed between two versions of a process, in reviewer's words (pure).

    from flowctl.diff import compare

    result = compare(old_process, new_process)
    for change in result.changes:
        print(change.element, change.message, "WEAKENS CONTROL" if change.weakens else "")

Processes are compared by id: stages, results, fields and phases are matched
by their ids and names, never by their place in the file, so a reordered,
reformatted or commented file shows "no behaviour change".
"""

from flowctl.diff.compare import Change, ProcessDiff, added, blockers, compare, removed

__all__ = ["Change", "ProcessDiff", "added", "blockers", "compare", "removed"]
