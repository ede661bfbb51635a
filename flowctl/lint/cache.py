"""The definition cache: what flowctl learnt from a definition file, kept on disk.

One cache, one key scheme: an entry's key (``entry_key``) is the sha256 of
what kind of entry it is, of ``code_digest()`` and of every input it depends
on. Two kinds of entries live here:

- lint results (``flowctl.lint.run``), under ``file_key(display, bytes)``:
  the file's bytes and the path it is shown as (messages name the file). The
  entry is the file's summary: its own diagnostics (loader, schema,
  single-file rules) and what the other files need to know (kind, process id,
  fields, end stages, what it names in the org directory and in other
  processes, an org's ids), all plain JSON. The rules that read the org
  directory or the other processes are judged from the summaries on every
  run, so an edit to ``org.yaml`` or to a child process is never answered
  from a stale entry, and nothing of other files is in the key.
- remembered definitions (``flowctl.api.definitions._Remembered``), under
  ``entry_key("valid <kind>", ...)`` of the definition's bytes and, for a
  process, of the org directory it was checked against: the plain data of a
  definition that loaded clean, which operator commands build the model from
  without parsing the YAML again.

``code_digest()`` covers the code: the source of every file of the flowctl
package (modules and bundled JSON Schemas: hashing all of it costs about a
millisecond, and no list of the modules lint runs can go stale), flowctl's
version, the entry ``FORMAT``, Python's version, the installed ruamel.yaml
(and its C extension), jsonschema, jsonschema-rs, msgspec and tzdata (the
size and time of each one's module file, which a new version rewrites) and
the time-zone database folders.

Besides this cache there is one in-process memo, for the life of a process:
``flowctl.api.instances._PROCESSES``, built processes by the sha256 of their
text.

The cache lives in ``$FLOWCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/flowctl``,
else ``~/.cache/flowctl`` (outside the working tree, so that files in a pull
request cannot plant entries). Deleting it at any time is safe; entries that
cannot be read or written are ignored, so the cache never changes a result.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from typing import Any, Final

import msgspec

from flowctl import __version__

FORMAT: Final = 2  # bump when the layout of an entry changes
ENV_DIR: Final = "FLOWCTL_CACHE_DIR"
MAX_AGE: Final = 30 * 86400  # entries not rewritten for this long are removed...
PRUNE_EVERY: Final = 86400  # ...by the first run that writes after this long

PACKAGE: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # flowctl/
_LIBRARIES: Final = ("ruamel.yaml", "_ruamel_yaml", "jsonschema", "jsonschema_rs", "msgspec",
                     "tzdata")


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


def _package_files(root: str) -> list[str]:
    """Every file of the package at ``root`` (relative, sorted), bytecode aside."""
    out: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out.extend(os.path.relpath(os.path.join(folder, f), root) for f in files
                   if not f.endswith((".pyc", ".pyo")))
    return sorted(out)


@cache
def code_digest() -> str:
    """A digest of everything besides its inputs that an entry depends on (see above)."""
    h = hashlib.sha256(f"flowctl {__version__} cache {FORMAT}\n{sys.version}\n".encode())
    for rel in _package_files(PACKAGE):
        try:
            with open(os.path.join(PACKAGE, rel), "rb") as fh:
                h.update(rel.encode() + b"\0" + hashlib.sha256(fh.read()).digest())
        except OSError:
            h.update(rel.encode() + b"\0-")
    for token in (*_library_tokens(), *_tz_tokens()):
        h.update(token.encode() + b"\n")
    return h.hexdigest()


def entry_key(kind: str, *inputs: bytes) -> str:
    """The key of an entry of ``kind`` made from ``inputs`` by the current code."""
    h = hashlib.sha256(f"{kind}\0{code_digest()}\0".encode())
    for part in inputs:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def file_key(display: str, data: bytes) -> str:
    """The key of a file's lint entry: its bytes and the name it is shown as."""
    return entry_key("lint", display.encode("utf-8", "surrogateescape"), data)


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
                entry = msgspec.json.decode(fh.read())
        except (OSError, msgspec.DecodeError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` (atomically; failures are ignored: the cache is optional)."""
        entry["format"] = FORMAT
        path = self._path(key)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            data = msgspec.json.encode(entry)
        except (msgspec.EncodeError, UnicodeEncodeError):
            return
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
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
