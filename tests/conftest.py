"""Shared test set-up."""

from __future__ import annotations

import os
import tempfile

# The lint cache of the test run lives in a folder of its own, never in the
# user's ~/.cache: tests must not read entries a developer's runs left behind.
os.environ.setdefault("FLOWCTL_CACHE_DIR", tempfile.mkdtemp(prefix="flowctl-test-cache-"))

# Property tests explore new examples on a developer's machine, and replay the
# same ones in CI (CI=true), so that a submission's verdict does not depend on
# luck; a failure found locally is kept in .hypothesis/ and replayed first.
if os.environ.get("CI"):
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True)
    settings.load_profile("ci")
