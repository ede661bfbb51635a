"""Shared test set-up."""

from __future__ import annotations

import os
import tempfile

# The lint cache of the test run lives in a folder of its own, never in the
# user's ~/.cache: tests must not read entries a developer's runs left behind.
os.environ.setdefault("FLOWCTL_CACHE_DIR", tempfile.mkdtemp(prefix="flowctl-test-cache-"))
