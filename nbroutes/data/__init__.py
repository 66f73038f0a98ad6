"""The data layer: ``db()``, one shared SQLite connection per file, and ``crud()``, a REST resource from a table.

It needs the core (``App``, routes) and sqlite-utils, never a server or the notebook's widgets.
"""

from nbroutes.data.resources import crud
from nbroutes.data.sqlite import check_changes, close_all, db, lock, open_databases, reopen_all, watch

__all__ = ["check_changes", "close_all", "crud", "db", "lock", "open_databases", "reopen_all", "watch"]
