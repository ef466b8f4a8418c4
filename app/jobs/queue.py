"""The queue (Huey: an SQLite file on one machine, Redis for several app servers) and what a running
job shares through its storage: progress, a heartbeat, and the request to cancel."""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

QUEUE_NAME = "crm"
STALE_SECONDS = 60  # a running job whose worker has not been heard of for this long is run again


def build_queue(url: str, name: str = QUEUE_NAME) -> Huey:
    """Return the Huey of CRM_JOBS_URL (settings made it sqlite:///file or redis://...)."""
    if url.startswith(("redis://", "rediss://")):
        return RedisHuey(name, url=url)
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(path))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Progress:
    """What a job reports while it runs: its phase (read, check, write, export), rows done of total."""

    phase: str
    done: int
    total: int
    started: float
    beat: float
    worker: str

    @property
    def rate(self) -> float:
        elapsed = max(self.beat - self.started, 1e-6)
        return self.done / elapsed

    @property
    def seconds_left(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 and self.total >= self.done else None

    def as_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "done": self.done, "total": self.total, "rate": round(self.rate, 1),
                "seconds_left": None if self.seconds_left is None else round(self.seconds_left),
                "percent": round(100 * self.done / self.total) if self.total else 0}


class Live:
    """A job's live state in the queue's storage, readable by every app server."""

    def __init__(self, queue: Huey, job_id: str):
        self.queue, self.job_id = queue, job_id
        self.started = time.time()

    def key(self, what: str) -> str:
        return f"crm:{what}:{self.job_id}"

    def report(self, phase: str, done: int, total: int) -> None:
        beat = time.time()
        self.queue.put(self.key("progress"), Progress(phase, done, total, self.started, beat, worker_name()))

    def progress(self) -> Progress | None:
        found = self.queue.get(self.key("progress"), peek=True)
        return found if isinstance(found, Progress) else None

    def cancel(self) -> None:
        self.queue.put(self.key("cancel"), True)

    def cancelled(self) -> bool:
        return bool(self.queue.get(self.key("cancel"), peek=True))

    def forget(self) -> None:
        self.queue.get(self.key("progress"))
        self.queue.get(self.key("cancel"))

    def stale(self) -> bool:
        """Return True when no worker is running the job: its worker here is gone, or silent too long."""
        found = self.progress()
        if found is None:
            return True
        host, _, pid = found.worker.partition(":")
        if host == socket.gethostname() and pid.isdigit() and not alive(int(pid)):
            return True
        return time.time() - found.beat > STALE_SECONDS


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
