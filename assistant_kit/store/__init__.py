"""Persistence of assistants, threads, messages, runs and run steps."""

from .sql import ACTIVE_RUN_STATUSES, MASTER_OWNER, AsyncStore, Page, Store, database_url, default_db_path

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "MASTER_OWNER",
    "AsyncStore",
    "Page",
    "Store",
    "database_url",
    "default_db_path",
]
