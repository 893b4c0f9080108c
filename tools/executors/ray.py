"""Ray as the executor: a pool of worker actors that generate, results streamed back to the driver.

The driver (the ``prepbench`` process) connects to a Ray cluster (``--ray-address``) or starts
a local instance, and creates ``--workers`` actors of the agent family's worker class, one CPU
each, before it reads the corpus, so the workers start (and load the English parser) while the
driver ingests and chunks. A run's *recipe* (the skill, the generator's spec and options, what
the server probe found, the corpus's sources) travels as one object in Ray's object store; each
worker builds its generator from it the first time it sees it.

On a running cluster (``--ray-address``) the workers are named, detached actors that outlive the
run and serve the next one warm (the parser and the Python imports are paid once per worker, not
once per run); a worker idle for :data:`IDLE_S` seconds ends itself, and ``ray stop`` ends all.
Their names carry a fingerprint of prepbench's code, so a changed prepbench never meets a worker
of the old one. A local instance started for the run ends with it, workers included.

:meth:`RayPool.submit` sends one batch to the least busy worker and awaits its result, so the
driver's lanes keep every worker busy and each finished batch comes back as soon as it is done.
A worker that dies (killed, out of memory, its node lost) is restarted by Ray, and the batches it
held are sent again (at most :data:`REISSUES` times each, then the run stops, its chunks left
pending): nothing is recorded until the driver commits a batch, so a re-issued batch is
generated once more and recorded once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

from prepbench.tools.errors import PrepbenchError
from prepbench.tools.executors import ExecutorOptions, import_ray

#: Times one batch is sent again after the worker holding it died, before the run stops.
REISSUES = 3
#: The Ray namespace of prepbench's actors.
NAMESPACE = "prepbench"
#: Seconds a warm worker of a running cluster waits for a run before it ends itself.
IDLE_S = 600.0
#: Seconds the first call waits for a worker to start (import prepbench, load the English parser).
START_S = 180.0


class WorkerLost(PrepbenchError):
    """A batch outlived :data:`REISSUES` workers (each died while holding it)."""


def connect(options: ExecutorOptions, workers: int) -> bool:
    """Connect to ``options.address``, or start a local Ray instance with at least ``workers``
    CPUs; nothing when this process is connected already (a test's cluster). Returns True when
    this call connected (so the caller ends the connection with ``ray.shutdown``).

    Raises:
        PrepbenchError: the cluster cannot be reached or started (one line).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    # the driver reports no task events (the state API's task list): flushing them made its
    # disconnect (ray.shutdown) take 0.27 s at the end of every run, against 0.02 s without;
    # a user who wants them sets the variable
    os.environ.setdefault("RAY_task_events_report_interval_ms", "0")
    kwargs: dict[str, Any] = {
        "namespace": NAMESPACE,
        "include_dashboard": False,
        "log_to_driver": False,  # worker output would tear the progress bar; errors come back as exceptions
        "configure_logging": False,
        "logging_level": logging.ERROR,
    }
    if options.address:
        kwargs["address"] = options.address
    else:
        # a local instance keeps Ray's default (token authentication), without its notice on every run
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        kwargs["num_cpus"] = max(os.cpu_count() or 1, workers)
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = options.address or "a local Ray instance"
        raise PrepbenchError(f"--executor ray: cannot connect to {where}: {str(e).splitlines()[0][:200]}") from None
    return True


def code_fingerprint(*modules: str) -> str:
    """12 hex digits naming the code of prepbench's ``tools`` package and of ``modules``' packages
    (each ``.py`` file's path, size and modification time): warm workers of other code are not reused."""
    roots = {Path(__file__).resolve().parents[1]}
    roots |= {Path(sys.modules[m].__file__).resolve().parent for m in modules if getattr(sys.modules.get(m), "__file__", None)}
    h = hashlib.sha256()
    for root in sorted(roots):
        for f in sorted(root.rglob("*.py")):
            st = f.stat()
            h.update(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


def unwrap(ray: Any, e: BaseException) -> BaseException:
    """The exception a worker raised, out of Ray's wrapper (a ``PrepbenchError`` stays one line)."""
    if isinstance(e, ray.exceptions.RayTaskError) and isinstance(e.cause, BaseException):
        return e.cause
    return e


class RayPool:
    """``--workers`` actors of ``worker_class`` on the connected cluster (see the module docstring).

    ``worker_class(idle_s)`` must be importable by the workers (a module-level class of
    prepbench) and have ``async process(key, recipe_refs, payload)`` (``recipe_refs`` is a
    one-item list holding the recipe's ``ObjectRef``: inside a list, Ray does not resolve it, so a
    worker fetches a recipe only the first time it sees ``key``) and ``call(fn, *args)`` (run
    ``fn(*args)`` there). ``idle_s`` is None for workers that end with the run.

    Args:
        options: the executor options (``workers``; None: one per CPU of the cluster).
        worker_class: the agent family's worker class.

    Raises:
        PrepbenchError: the cluster cannot be reached, or has fewer CPUs than ``--workers``.
    """

    def __init__(self, options: ExecutorOptions, worker_class: type):
        ray = self.ray = import_ray()
        self.started = connect(options, options.workers or 1)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        n = options.workers or max(1, cpus)
        if n > cpus:
            self.close()
            raise PrepbenchError(
                f"--workers {n}: the Ray cluster has {cpus} CPU(s) and each worker takes one; "
                f"use --workers {max(1, cpus)} or a larger cluster"
            )
        self.remote_class = ray.remote(worker_class)
        self.warm = bool(options.address)  # a running cluster: named workers that serve the next run too
        self.prefix = f"{worker_class.__name__}-{code_fingerprint(worker_class.__module__)}"
        if self.warm:
            self._end_stale(n)
        self.actors = [self._actor(i) for i in range(n)]
        self.inflight = [0] * n
        self.recipe_refs: list = []
        self.key = ""
        self.reissued = 0

    def _end_stale(self, n: int) -> None:
        """End the warm workers of another prepbench code (another fingerprint) when they hold the
        CPUs this pool's ``n`` workers need (each holds one until it ends)."""
        ray = self.ray
        from ray.util import list_named_actors

        names = set(list_named_actors())
        missing = sum(1 for i in range(n) if f"{self.prefix}-{i}" not in names)
        family = self.prefix.rsplit("-", 1)[0] + "-"
        stale = sorted(x for x in names if x.startswith(family) and not x.startswith(self.prefix + "-"))
        if missing and stale and ray.available_resources().get("CPU", 0) < missing:
            for name in stale:
                try:
                    ray.kill(ray.get_actor(name), no_restart=True)
                except ValueError:  # ended meanwhile
                    pass

    def _actor(self, i: int) -> Any:
        """Worker ``i``: a new actor, or (warm workers) the named one, made when it does not exist."""
        # max_restarts: a killed worker comes back (warm again); its batches are re-issued by submit
        opts: dict[str, Any] = {"num_cpus": 1, "max_restarts": -1, "max_task_retries": 0}
        if self.warm:
            opts.update(name=f"{self.prefix}-{i}", lifetime="detached", get_if_exists=True)
        return self.remote_class.options(**opts).remote(IDLE_S if self.warm else None)

    @property
    def workers(self) -> int:
        return len(self.actors)

    def serve(self, key: str, recipe: Any) -> None:
        """Put the run's ``recipe`` (named ``key``, unique per run) where the workers fetch it."""
        self.key = key
        self.recipe_refs = [self.ray.put(recipe)]

    def call(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on a worker (waits for it to be up), its exception re-raised here unwrapped.

        Raises:
            PrepbenchError: no worker started within :data:`START_S` seconds (the cluster's CPUs are
                held by other actors).
        """
        return self.call_each(fn, [args])[0]

    def call_each(self, fn: Any, args_list: list[tuple]) -> list:
        """``[fn(*args) for args in args_list]``, the calls spread over the workers in turn and run
        at once; results in order. Raises as :meth:`call`."""
        return self.start_each(fn, args_list)()

    def start_each(self, fn: Any, args_list: list[tuple]) -> Callable[[], list]:
        """Send the calls of :meth:`call_each` now and return ``collect()``, which waits for their
        results (in order; raises as :meth:`call`): the driver works on while the workers do."""
        ray = self.ray
        refs = [self.actors[i % len(self.actors)].call.remote(fn, *args) for i, args in enumerate(args_list)]

        def collect() -> list:
            try:
                return ray.get(refs, timeout=START_S)
            except ray.exceptions.GetTimeoutError:
                free = ray.available_resources().get("CPU", 0)
                raise PrepbenchError(
                    f"--executor ray: no worker started within {START_S:.0f} s (the cluster has {free:g} free CPU(s); "
                    "each worker needs one): free the cluster's CPUs, or use fewer --workers"
                ) from None
            except ray.exceptions.RayTaskError as e:
                raise unwrap(ray, e) from None

        return collect

    async def submit(self, payload: Any) -> Any:
        """Generate ``payload`` (one batch) on the least busy worker and return its result.

        Raises:
            WorkerLost: the batch was held by :data:`REISSUES` + 1 workers that all died.
            Exception: the worker's own exception (a bug in the family's work), unwrapped.
        """
        ray = self.ray
        died: list[int] = []  # the workers that died holding this batch, most recent last
        for attempt in range(REISSUES + 1):
            # the least busy worker, one that has not just died with this batch first: a restarting
            # worker refuses it again until it is up, which on a loaded machine outlasts the retries
            i = min(range(len(self.actors)), key=lambda k: (died.count(k), self.inflight[k]))
            self.inflight[i] += 1
            try:
                return await self.actors[i].process.remote(self.key, self.recipe_refs, payload)
            except ray.exceptions.RayActorError:
                died.append(i)
                self.reissued += 1  # the worker died holding it: Ray restarts it, the batch goes again
                if self.warm:  # a warm worker that ended itself (idle) is made anew under its name
                    self.actors[i] = self._actor(i)
            except ray.exceptions.RayTaskError as e:
                raise unwrap(ray, e) from None
            finally:
                self.inflight[i] -= 1
            await asyncio.sleep(0.2 * (attempt + 1))
        raise WorkerLost(
            f"a batch was sent to {REISSUES + 1} Ray workers and each died before finishing it; "
            "its chunks stay pending (check the workers' memory, then run the same command to resume)"
        )

    def close(self) -> None:
        """End the run's workers (warm ones stay for the next run), and the Ray instance this pool started."""
        ray = self.ray
        if not getattr(self, "warm", False):
            for a in getattr(self, "actors", []):
                try:
                    ray.kill(a, no_restart=True)
                except Exception:  # already gone
                    pass
        self.actors = []
        if self.started:
            ray.shutdown()
            self.started = False
