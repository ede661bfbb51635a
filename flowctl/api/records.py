"""Records the API hands out that are defined by the layers below it: a
journal entry and a notification, as the store keeps them."""

from __future__ import annotations

from flowctl.store.base import JournalEntry, NotificationRow

__all__ = ["JournalEntry", "NotificationRow"]
