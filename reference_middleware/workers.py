"""The workers: run due jobs, at most one per return at a time, and decide what a failure means.

A call that may work later (timeout, 5xx, 429, 409) puts the job back with exponential backoff
and full jitter, never sooner than the fake's Retry-After; a refusal (4xx) or too many attempts
dead-letters it. Nothing is held only in memory: a job stays pending in storage until its
handler finished, so a crash or a restart just runs it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from reference_middleware.clients import Rejected, Transient
from reference_middleware.defects import Defect
from reference_middleware.settings import Settings
from reference_middleware.store import Job, Repository
from reference_middleware.workflow import Later, Wait, Workflow

log = logging.getLogger("reference_middleware")
IDLE_POLL_S = 1.0  # the longest a worker sleeps without being woken


class Workers:
    def __init__(self, settings: Settings, repo: Repository, workflow: Workflow) -> None:
        self.settings, self.repo, self.workflow = settings, repo, workflow
        self.rng = random.Random(settings.seed)
        self.wake = asyncio.Event()
        self.busy: set[str] = set()  # returns with a job running
        self.running: set[asyncio.Task] = set()
        self._loop: asyncio.Task | None = None

    def start(self) -> None:
        self._loop = asyncio.create_task(self._dispatch(), name="reference-workers")

    async def stop(self) -> None:
        """Stop at once; interrupted jobs stay pending and run again at the next start."""
        tasks = [t for t in (self._loop, *self.running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _dispatch(self) -> None:
        while True:
            self.wake.clear()
            capacity = self.settings.workers - len(self.running)
            if capacity > 0:
                for job in await self.repo.due_jobs(time.time(), limit=self.settings.workers * 16):
                    if capacity == 0:
                        break
                    if job.return_id in self.busy:
                        continue
                    self.busy.add(job.return_id)
                    task = asyncio.create_task(self._run(job))
                    self.running.add(task)
                    task.add_done_callback(self.running.discard)
                    capacity -= 1
            next_due = await self.repo.next_due()
            timeout = IDLE_POLL_S
            if next_due is not None and next_due > time.time():
                timeout = min(IDLE_POLL_S, next_due - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        if self.workflow.has(Defect.IGNORES_RETRY_AFTER):
            return 0.0  # hammer it
        ceiling = min(self.settings.retry_cap_s, self.settings.retry_base_s * 2**attempts)
        return max(self.rng.uniform(ceiling / 2, ceiling), retry_after or 0.0)

    async def _run(self, job: Job) -> None:
        try:
            await self.workflow.run(job)
        except Wait as wait:
            await self.repo.park(job, str(wait))
        except Later as later:
            await self.repo.retry(job, later.due_at, str(later))
        except Transient as e:
            if self.workflow.has(Defect.NO_RETRY):
                await self.repo.kill(job, f"dropped after a failed call: {e}")
            elif job.attempts + 1 >= self.settings.max_attempts:
                await self.repo.kill(job, f"gave up after {job.attempts + 1} attempts: {e}")
            else:
                await self.repo.retry(job, time.time() + self.backoff(job.attempts, e.retry_after), str(e))
        except Rejected as e:
            log.warning("job %s (%s of %s) refused: %s", job.id, job.kind, job.return_id, e)
            await self.repo.kill(job, str(e))
        except Exception as e:  # a bug, or data we did not expect: keep it for a human, go on
            log.exception("job %s (%s of %s) failed", job.id, job.kind, job.return_id)
            await self.repo.kill(job, f"{type(e).__name__}: {e}")
        else:
            await self.repo.finish(job)
        finally:
            self.busy.discard(job.return_id)
            self.wake.set()
