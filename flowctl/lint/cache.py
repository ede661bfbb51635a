"""The lint cache: what ``flowctl lint`` found in a file, keyed by what it depends on.

A second ``flowctl lint`` over files that did not change reads its results
from here instead of parsing again. An entry's key is the sha256 of:

- the file's bytes and the path it is shown as (messages name the file);
- flowctl's version and the source of every module the lint pipeline runs,
  the bundled JSON Schemas, the versions of ruamel.yaml, jsonschema and
  jsonschema-rs, Python's version, and the time-zone database (``code_digest``).

An entry holds the file's own diagnostics (loader, schema, single-file
rules) and a summary of the file (kind, process id, fields, end stages,
children), both plain JSON. Results of the rules that read the org
directory or other processes are stored beside them under a second key
(the org directory's entry key, and the ids and signatures of the other
processes the file refers to), so an edit to ``org.yaml`` or to a child
process is never answered from a stale entry.

The cache lives in ``$FLOWCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/flowctl``,
else ``~/.cache/flowctl`` (outside the working tree, so that files in a pull
request cannot plant entries). Deleting it at any time is safe; entries that
cannot be read or written are ignored, so the cache never changes a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import cache
from typing import Any, Final

from flowctl import __version__

FORMAT: Final = 1  # bump when the layout of an entry changes
ENV_DIR: Final = "FLOWCTL_CACHE_DIR"
MAX_CONTEXTS: Final = 4  # results under this many org/catalog contexts per file
MAX_AGE: Final = 30 * 86400  # entries not rewritten for this long are removed...
PRUNE_EVERY: Final = 86400  # ...by the first run that writes after this long

# The modules whose code decides what lint reports (relative to the package).
_PIPELINE: Final = (
    "__init__.py", "build.py", "cache.py", "conditions.py", "diagnostics.py", "document.py",
    "durations.py", "linter.py", "loader.py", "model.py", "rules.py", "schema.py",
    "api/definitions.py", "schemas/process.schema.json", "schemas/org.schema.json",
)
_LIBRARIES: Final = ("ruamel.yaml", "_ruamel_yaml", "jsonschema", "jsonschema_rs")


def default_dir() -> str:
    """Where lint results are kept (see the module docstring)."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "flowctl")


def _stat_token(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:-"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _library_tokens() -> list[str]:
    from importlib.util import find_spec

    out = []
    for name in _LIBRARIES:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        out.append(f"{name}={_stat_token(origin) if origin else '-'}")
    return out


def _tz_tokens() -> list[str]:
    from zoneinfo import TZPATH

    return [_stat_token(p) for p in TZPATH]


@cache
def code_digest() -> str:
    """A digest of everything besides the file itself that lint results depend on."""
    h = hashlib.sha256(f"flowctl {__version__} cache {FORMAT}\n{sys.version}\n".encode())
    root = os.path.dirname(os.path.abspath(__file__))
    for rel in _PIPELINE:
        try:
            with open(os.path.join(root, rel), "rb") as fh:
                h.update(rel.encode() + b"\0" + hashlib.sha256(fh.read()).digest())
        except OSError:
            h.update(rel.encode() + b"\0-")
    for token in (*_library_tokens(), *_tz_tokens()):
        h.update(token.encode() + b"\n")
    return h.hexdigest()


def file_key(display: str, data: bytes) -> str:
    """The key of a file's entry: its bytes, the name it is shown as, the code digest."""
    h = hashlib.sha256(code_digest().encode())
    h.update(display.encode("utf-8", "surrogateescape") + b"\0")
    h.update(data)
    return h.hexdigest()


def context_key(parts: Any) -> str:
    """A key for plain JSON data (the context a file's cross-file results depend on)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class LintCache:
    """Entries as small JSON files under ``<root>/lint/<2 hex>/<key>.json``."""

    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.join(root or default_dir(), "lint")

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], key + ".json")

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry under ``key``, or None if there is none or it cannot be read."""
        try:
            with open(self._path(key), "rb") as fh:
                entry = json.loads(fh.read())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` (atomically; failures are ignored: the cache is optional)."""
        contexts = entry.get("contexts")
        if isinstance(contexts, dict) and len(contexts) > MAX_CONTEXTS:
            entry["contexts"] = dict(list(contexts.items())[-MAX_CONTEXTS:])
        entry["format"] = FORMAT
        path = self._path(key)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def prune(self, now: float | None = None) -> int:
        """Remove entries older than ``MAX_AGE``, at most once per ``PRUNE_EVERY``.

        Returns how many were removed. Cheap when it is not yet time: one stat.
        """
        import time

        now = time.time() if now is None else now
        stamp = os.path.join(self.root, ".pruned")
        try:
            if now - os.stat(stamp).st_mtime < PRUNE_EVERY:
                return 0
        except OSError:
            pass
        removed = 0
        try:
            with open(stamp, "w", encoding="utf-8"):
                pass
            for shard in os.scandir(self.root):
                if shard.is_dir(follow_symlinks=False):
                    removed += _remove_older(shard.path, now - MAX_AGE)
        except OSError:
            pass
        return removed


def _remove_older(folder: str, cutoff: float) -> int:
    removed = 0
    for item in os.scandir(folder):
        try:
            if item.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(item.path)
                removed += 1
        except OSError:
            continue
    return removed
