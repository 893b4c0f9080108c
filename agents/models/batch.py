"""The batch collector: a ``--batch`` run's model requests, gathered into provider batch jobs.

In batch mode :class:`~prepbench.agents.models.ratelimit.ResilientChat` does not send a request
over HTTP: it hands the request body (built as the online client builds it) to
:meth:`BatchCollector.request` and awaits the reply. Every pending chunk is in flight at once,
so the requests of one step of the graph (the triage of every chunk, then their generation,
repairs, ...) arrive together; once none has arrived for ``quiet_s`` the collector submits what
it holds as **one job** (up to the provider's cap) and polls it every ``poll_s`` seconds until it
ends, then answers each waiting request from the job's results by its ``custom_id``.

Exactly-once payment: ``custom_id`` is a hash of the canonical request body (deterministic
prompts give the same ids on a re-run), with ``-r<n>`` after the ``n``-th resubmission of an
errored one. The job is recorded in the ledger (:mod:`prepbench.tools.ledger.batches`) in two
transactions: the intent (requests, and OpenAI's input file id) before the create call, the
job id as soon as it returns. A request whose latest submission is in a job with an id is never
submitted again: a killed run's re-run polls that job and takes its result. A kill between the
create call's return and the next transaction (milliseconds) leaves an intent without a job id:
for OpenAI the re-run finds the job by its input file (``GET /v1/batches``); a message batch names
no input file, so for Anthropic the intent's requests are submitted again (paid twice).

Errors: an errored item raises :class:`~prepbench.agents.models.batch_protocols.BatchItemError`
(classified like an online error by its HTTP status, so a 429 or 5xx is retried: a new
``custom_id`` in a new job); a job that expired answers its unfinished requests the same way. A
job that failed or was cancelled, a batch API the server does not have (404), or a job still
running at the deadline stop the run (:class:`BatchStop`, a StopRun: chunks stay pending) with
why and what to do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from prepbench.agents.base import StopRun
from prepbench.agents.models.batch_protocols import JOB_CAPS, BatchItemError, JobState
from prepbench.agents.models.faults import redact, status_of
from prepbench.tools.hashing import canonical_json, sha256_text

#: Looks at a job that may fail in a row (the provider unreachable) before the run stops.
MAX_POLL_ERRORS = 10


class BatchStop(StopRun):
    """The batch job (or the batch API) cannot answer: stop, leave the chunks pending."""


@dataclass
class BatchSettings:
    """How a batch run submits and waits.

    Attributes:
        poll_s: seconds between two looks at a running job (``--batch-poll``).
        deadline_s: seconds a job may run before the run stops (its requests stay in the job; a
            re-run polls it again); the providers finish within 24 h.
        quiet_s: seconds without a new request before what is held is submitted.
    """

    poll_s: float = 30.0
    deadline_s: float = 25 * 3600.0
    quiet_s: float = 0.25


def base_id(body: dict) -> str:
    """The ``custom_id`` of a request body's first submission: ``pb-`` and 32 hex digits of the
    SHA-256 of its canonical JSON (fits both providers' ``^[a-zA-Z0-9_-]{1,64}$``)."""
    return "pb-" + sha256_text(canonical_json(body))[:32]


class BatchCollector:
    """Gathers requests into batch jobs, records them, polls them, answers the waiting requests.

    Args:
        protocol: the provider's protocol (:mod:`prepbench.agents.models.batch_protocols`).
        settings: poll interval, deadline, quiet window.
        base_url: the server (for messages).
        secrets: strings to redact from error texts.

    Attributes:
        store: the run's ledger (a :class:`~prepbench.tools.ledger.RunFolder`), set by the runner;
            None: jobs are known to this process only (no resume of a job).
        on_progress: ``on_progress(message)``: a job's id, counts and waiting time, on each change.
        cap: requests per job at most (the provider's cap).
        submitted: jobs this process created (``[(job_id, n_requests)]``).
    """

    def __init__(self, protocol: Any, settings: BatchSettings | None = None, base_url: str | None = None, secrets: tuple = ()):
        self.protocol = protocol
        self.settings = settings or BatchSettings()
        self.base_url = base_url
        self.secrets = tuple(s for s in secrets if s)
        self.cap = JOB_CAPS[protocol.provider]
        self.store: Any = None
        self.on_progress: Callable[[str], None] = lambda message: None
        self.submitted: list[tuple[str, int]] = []
        self.renew()

    def renew(self) -> None:
        """Forget the event-loop-bound state (futures, tasks): a new event loop uses the collector."""
        self.model: Any = None
        self.queue: dict[str, tuple[dict, str, str, int]] = {}  # custom_id -> (body, node, base id, attempt)
        self.waiters: dict[str, list[asyncio.Future]] = {}
        self.live: dict[str, str] = {}  # base id -> custom_id submitted or queued, not yet answered
        self.job_of: dict[str, str] = {}  # custom_id -> the job it is in
        self.attempts: dict[str, int] = {}  # base id -> the next resubmission number (errors not yet in a ledger)
        self.polls: dict[str, asyncio.Task] = {}
        self.outcomes: dict[str, dict[str, tuple[dict | None, BatchItemError | None]]] = {}  # job id -> results
        self.flusher: asyncio.Task | None = None
        self.last_arrival = 0.0
        self.recovered = False  # the ledger's intents were looked up (:meth:`_recover`)
        self.recovering = asyncio.Lock()

    # -- requests ---------------------------------------------------------------------
    async def request(self, model: Any, body: dict, node: str, convert: Callable[[dict], Any]) -> Any:
        """``convert(reply)`` of the provider's reply body to request ``body`` (a chat completion
        or a message; ``convert`` makes the AIMessage). A reply ``convert`` rejects is recorded
        errored, so the same body asked again is submitted again.

        Raises:
            BatchItemError: the provider answered the item with an error (or its job expired).
            BatchStop: no batch API, a failed or cancelled job, the deadline passed.
            Exception: what ``convert`` raised.
        """
        self.model = model
        if not self.recovered:
            await self._recover()
        base = base_id(body)
        fut = asyncio.get_running_loop().create_future()
        cid = self.live.get(base) or self._resume(base)
        if cid is None:
            cid = self._enqueue(base, body, node)
        self.live[base] = cid
        self.waiters.setdefault(cid, []).append(fut)
        job = self.job_of.get(cid)
        if job in self.outcomes and cid in self.outcomes[job]:  # answered by a job that ended already
            self._answer(cid, *self.outcomes[job][cid])
        try:
            reply = await fut
        finally:
            if self.live.get(base) == cid and not self.waiters.get(cid):
                self.live.pop(base, None)
        try:
            return convert(reply)
        except Exception as e:
            self._rejected(cid, e)
            raise

    async def _recover(self) -> None:
        """Give the ledger's intents (jobs whose create call returned to a killed process before
        their id was recorded) their job id where the provider can tell (OpenAI: the job over the
        intent's input file), so their requests are polled there, not paid for again."""
        async with self.recovering:
            if self.recovered or self.store is None:
                self.recovered = True
                return
            for intent in self.store.batch_intents(self.protocol.provider):
                try:
                    job = await self.protocol.find(self.model, intent["input_file_id"], intent["submitted_at"])
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception:  # noqa: BLE001 - not found: its requests are submitted again
                    job = None
                if job is not None:
                    self.store.batch_submitted(intent["key"], job.job_id, job.status)
                    self.on_progress(
                        f"batch job {job.job_id}: found by its input file {intent['input_file_id']} "
                        "(an earlier run was stopped before recording it)"
                    )
            self.recovered = True

    def _enqueue(self, base: str, body: dict, node: str) -> str:
        """Queue request ``base`` for the next job; its custom_id (``-r<n>`` on a resubmission)."""
        row = self.store.batch_latest(base) if self.store is not None else None
        attempt = max(int(row["attempt"]) + 1 if row is not None else 0, self.attempts.get(base, 0))
        self.attempts[base] = attempt + 1
        cid = base if attempt == 0 else f"{base}-r{attempt}"
        self.queue[cid] = (body, node, base, attempt)
        self.last_arrival = time.monotonic()
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())
        return cid

    def _resume(self, base: str) -> str | None:
        """The custom_id to wait for when request ``base`` is in a job the ledger knows (and not
        errored), with a poll of that job started where none is; None: submit it."""
        if self.store is None:
            return None
        row = self.store.batch_latest(base)
        if row is None or row["state"] == "errored" or not row["job_id"] or row["provider"] != self.protocol.provider:
            return None
        job_id, cid = row["job_id"], row["custom_id"]
        known = self.outcomes.get(job_id)
        if known is not None and cid not in known:
            return None  # the job ended without this request's result: submit it again
        self.job_of[cid] = job_id
        if job_id not in self.polls:
            self.polls[job_id] = asyncio.create_task(self._poll(job_id, time.monotonic(), resumed=True))
        return cid

    def _text(self, e: BaseException) -> str:
        """An error as one line for the ledger and the user: its class and first line, at most 300
        characters, API keys redacted."""
        first = str(e).splitlines()[0] if str(e) else ""
        return redact(f"{type(e).__name__}: {first}"[:300], self.secrets)

    def _answer(self, cid: str, result: dict | None = None, error: BaseException | None = None) -> None:
        """Resolve every request waiting for ``cid``."""
        for fut in self.waiters.pop(cid, []):
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

    def _rejected(self, cid: str, error: BaseException) -> None:
        """A reply that could not be used: forget it and record the request errored."""
        job = self.job_of.get(cid)
        if job in self.outcomes:
            self.outcomes[job].pop(cid, None)
        if self.store is not None:
            self.store.batch_outcomes({cid: self._text(error)})

    # -- submission -------------------------------------------------------------------
    async def _flush(self) -> None:
        """Submit what is queued once no request came for ``quiet_s`` (a job per ``cap`` requests);
        a fault of this process on the way (the ledger) stops every request not yet in a job."""
        try:
            await self._submit_queued()
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the waiting requests get the cause
            stop = BatchStop(
                f"batch submission failed: {self._text(e)}",
                cause="batch",
                advice="fix what the message names, then run the same command again",
            )
            self.queue.clear()
            for cid in [c for c in self.waiters if c not in self.job_of]:
                self._answer(cid, error=stop)

    async def _submit_queued(self) -> None:
        """Submit the queue in jobs of at most ``cap`` requests, each after the quiet window."""
        while self.queue:
            wait = self.settings.quiet_s - (time.monotonic() - self.last_arrival)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            items = list(self.queue.items())[: self.cap]
            for cid, _ in items:
                del self.queue[cid]
            await self._submit(items)

    async def _submit(self, items: list[tuple[str, tuple[dict, str, str, int]]]) -> None:
        """One job: upload (OpenAI), record the intent, create, record the job id, start its poll."""
        reqs = [(cid, body) for cid, (body, *_rest) in items]
        key = uuid.uuid4().hex
        try:
            file_id = await self.protocol.upload(self.model, reqs)
            if self.store is not None:
                self.store.batch_intent(key, self.protocol.provider, file_id, [(c, b, a, n) for c, (_, n, b, a) in items])
            job = await self.protocol.create(self.model, reqs, file_id)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - every waiting request gets the cause
            err = self._submit_error(e)
            if self.store is not None:
                self.store.batch_submitted(key, None, "not_created")
                self.store.batch_outcomes({cid: self._text(err) for cid, _ in items})
            for cid, _ in items:
                self._answer(cid, error=err)
            return
        if self.store is not None:
            self.store.batch_submitted(key, job.job_id, job.status)
        self.submitted.append((job.job_id, len(items)))
        for cid, _ in items:
            self.job_of[cid] = job.job_id
        self.on_progress(f"batch job {job.job_id} ({self.protocol.provider}): {len(items)} requests submitted")
        self.polls[job.job_id] = asyncio.create_task(self._poll(job.job_id, time.monotonic()))

    def _submit_error(self, e: BaseException) -> BaseException:
        """What the requests of a job that could not be created raise: a stop for a server without
        the batch API (404) or that refuses the key; else the error itself (classified and retried)."""
        status = status_of(e)
        where = self.base_url or "the provider"
        detail = self._text(e)
        if status in (404, 405):
            return BatchStop(
                f"{where} has no {self.protocol.provider} batch API (HTTP {status} on submission): {detail}",
                cause="capability",
                advice="run without --batch (online requests at the full price)",
            )
        if status in (401, 403):
            return BatchStop(
                f"{where} refused the batch submission (HTTP {status}): {detail}",
                cause="auth",
                advice="set OPENAI_API_KEY or ANTHROPIC_API_KEY, then run the same command again",
            )
        return e

    # -- polling ----------------------------------------------------------------------
    async def _poll(self, job_id: str, since: float, resumed: bool = False) -> None:
        """Watch ``job_id`` until it ends, then answer its waiting requests; whatever goes wrong on
        the way (the provider unreachable, a ledger fault) stops them, never leaves them waiting."""
        if resumed:
            self.on_progress(f"batch job {job_id} ({self.protocol.provider}): submitted by an earlier run, polling it")
        try:
            await self._watch(job_id, since)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the waiting requests get the cause
            detail = self._text(e)
            self._stop_all(
                job_id,
                BatchStop(
                    f"batch job {job_id}: {detail}",
                    cause="batch",
                    advice="run the same command again once the provider answers: it polls the same job",
                ),
            )

    async def _watch(self, job_id: str, since: float) -> None:
        """Poll ``job_id`` every ``poll_s`` (its counts and waiting time on each change) until it ends.

        Raises:
            Exception: the provider failed ``MAX_POLL_ERRORS`` looks in a row, or its results could not be read.
        """
        last, errors = None, 0
        while True:
            waited = time.monotonic() - since
            try:
                job = await self.protocol.retrieve(self.model, job_id)
                errors = 0
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - a job the server does not know is answered; others are polled again
                if status_of(e) == 404:
                    self._end_unknown(job_id)
                    return
                errors += 1
                if errors >= MAX_POLL_ERRORS:
                    raise
                job = None
            if job is not None:
                seen = (job.status, job.counts.get("done"), job.counts.get("failed"))
                if seen != last:
                    last, c = seen, job.counts
                    self.on_progress(
                        f"batch job {job_id}: {job.status}, {c.get('done', 0)} done, {c.get('failed', 0)} failed "
                        f"of {c.get('total', '?')}, waiting {waited:.0f} s"
                    )
                    if self.store is not None:
                        self.store.batch_status(job_id, job.status, ended=job.ended)
                if job.ended:
                    await self._ended(job)
                    return
            if waited > self.settings.deadline_s:
                self._stop_all(
                    job_id,
                    BatchStop(
                        f"batch job {job_id} still running after {waited:.0f} s (the batch deadline)",
                        cause="batch",
                        advice="run the same command later: it polls the same job (nothing is submitted twice)",
                    ),
                )
                return
            await asyncio.sleep(self.settings.poll_s)

    async def _ended(self, job: JobState) -> None:
        """Answer the requests of an ended job from its results (a failed or cancelled job stops the run)."""
        if job.status in ("failed", "cancelled"):
            why = f": {job.problem}" if job.problem else ""
            if self.store is not None:
                self.store.batch_outcomes({cid: f"job {job.status}" for cid in self._waiting_in(job.job_id)})
            self._stop_all(
                job.job_id,
                BatchStop(
                    f"batch job {job.job_id} {job.status}{why}",
                    cause="batch",
                    advice="run the same command again: its requests are submitted in a new job"
                    + (" (fix what the job's errors name first)" if job.status == "failed" else ""),
                ),
            )
            return
        results = await self.protocol.results(self.model, job)
        self.outcomes[job.job_id] = results
        if self.store is not None and results:
            self.store.batch_outcomes({cid: (None if err is None else self._text(err)) for cid, (_, err) in results.items()})
        for cid in list(self.waiters):
            if cid in results:
                body, err = results[cid]
                self._answer(cid, body, err)
        for cid in self._waiting_in(job.job_id):  # no result in an ended job: it expired before running
            self._answer(cid, error=BatchItemError(f"batch job {job.job_id} {job.status} without a result for it", 408))

    def _waiting_in(self, job_id: str) -> list[str]:
        """The custom_ids still waiting whose latest submission is in ``job_id``."""
        return [cid for cid in self.waiters if self.job_of.get(cid) == job_id]

    def _end_unknown(self, job_id: str) -> None:
        """A recorded job the server does not know (another server, deleted): its requests are errored
        and submitted again by their retries."""
        cids = self._waiting_in(job_id)
        if self.store is not None:
            self.store.batch_outcomes({cid: f"job {job_id} unknown to the server" for cid in cids})
        for cid in cids:
            self._answer(cid, error=BatchItemError(f"batch job {job_id} is unknown to the server", 409))

    def _stop_all(self, job_id: str, stop: BatchStop) -> None:
        """Stop every request waiting in ``job_id``."""
        for cid in self._waiting_in(job_id):
            self._answer(cid, error=stop)
