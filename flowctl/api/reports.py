"""Lint reports through the API: a :class:`~flowctl.lint.run.LintResult` as
text, JSON, GitHub annotations or SARIF (:mod:`flowctl.lint.reporters`)."""

from __future__ import annotations

from flowctl.lint.reporters import PLAIN, Palette, render, summary_line, use_color

__all__ = ["PLAIN", "Palette", "render", "summary_line", "use_color"]
