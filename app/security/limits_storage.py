"""A storage for the `limits` library (used by Flask-Limiter) in the panel's own database.

Rate limits and failed-login counters must be shared by every worker and server; `limits` ships
storages for Redis, Memcached and MongoDB, none of which the embedded set-up has. This one keeps
fixed-window counters in the table crm_rate_limit, so the default needs no server. Configure
CRM_RATE_LIMIT_STORAGE=redis://... to use Redis instead.
"""
from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from limits.storage import Storage

from .login_state import COUNTER_TABLE

SCHEME = "crm-database"


class DatabaseStorage(Storage):
    """Fixed-window counters in crm_rate_limit; `url` names the database (an option, not the URI)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, url: str = "", **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if not url:
            raise ValueError("the database storage needs the database URL (RATELIMIT_STORAGE_OPTIONS url)")
        self.engine = sa.create_engine(url, pool_pre_ping=True)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add `amount` to the counter of `key`, starting a new window of `expiry` seconds if it ran out;
        return the new count."""
        now = time.time()
        table = COUNTER_TABLE
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    bumped = conn.execute(table.update().where(table.c.key == key, table.c.expires_at > now)
                                          .values(hits=table.c.hits + amount)).rowcount
                    if not bumped:  # no window yet, or it ran out: start a new one
                        conn.execute(table.delete().where(table.c.key == key))
                        conn.execute(table.insert().values(key=key, hits=amount, expires_at=now + expiry))
                    return int(conn.execute(sa.select(table.c.hits).where(table.c.key == key)).scalar() or 0)
            except sa.exc.IntegrityError:  # another worker started the window meanwhile: count in it
                continue
        raise RuntimeError(f"could not count {key!r}: the counter kept changing")

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            hits = conn.execute(sa.select(COUNTER_TABLE.c.hits).where(
                COUNTER_TABLE.c.key == key, COUNTER_TABLE.c.expires_at > time.time())).scalar()
        return int(hits or 0)

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            expiry = conn.execute(sa.select(COUNTER_TABLE.c.expires_at).where(COUNTER_TABLE.c.key == key)).scalar()
        return float(expiry) if expiry is not None else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(sa.func.count()).select_from(COUNTER_TABLE))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return int(conn.execute(COUNTER_TABLE.delete()).rowcount)

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(COUNTER_TABLE.delete().where(COUNTER_TABLE.c.key == key))
            conn.execute(COUNTER_TABLE.delete().where(COUNTER_TABLE.c.expires_at <= time.time()))
