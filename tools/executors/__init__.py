"""Where a run's work units are generated: in the driver's own event loop, or in Ray workers.

``local`` (the default) runs every lane of the agent family on one asyncio event loop in the
``prepbench`` process. ``ray`` (:mod:`.ray`) runs the generation of each batch of work units
(a chunk's triage, generation, screening and repairs; a generation slot) in a pool of Ray
worker actors, each with its own generator (model client, or the offline generator with its own
spaCy pipeline), and streams each finished batch back to the driver. The driver stays the one
writer of the ledger and commits batches in order (:class:`~prepbench.agents.scheduler.Scheduler`),
so the accepted set, the export and the exactly-once rule are those of a local run.

Modelled on HF datatrove's executors (local, Slurm, Ray run the same steps unchanged): the agent
family decides *what* a work unit is, the executor only *where* it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from prepbench.tools.errors import EnvironmentFault, PrepbenchError

#: The executors ``--executor`` takes.
EXECUTORS = ("local", "ray")
#: How to install Ray (the one-line error of ``--executor ray`` without it).
RAY_INSTALL = "pip install 'prepbench[ray]' (or: pip install 'ray>=2.40')"


@dataclass
class ExecutorOptions:
    """``--executor``, ``--ray-address`` and ``--workers``.

    Attributes:
        kind: ``local`` (asyncio lanes in this process) or ``ray`` (Ray worker actors).
        address: a running Ray cluster (``ray start --head`` prints it; ``auto`` finds a local
            one); None starts a local Ray instance for the run and stops it afterwards.
        workers: Ray worker actors (one CPU each); None: one per CPU of the cluster.
    """

    kind: str = "local"
    address: str | None = None
    workers: int | None = None

    @property
    def remote(self) -> bool:
        """Generation runs outside this process (``ray``)."""
        return self.kind == "ray"

    def check(self) -> None:
        """Refuse bad options before anything is written.

        Raises:
            PrepbenchError: an unknown executor, ``--workers`` below 1, or ``--ray-address`` /
                ``--workers`` without ``--executor ray``.
            EnvironmentFault: ``--executor ray`` where Ray is not installed (names the pip command).
        """
        if self.kind not in EXECUTORS:
            raise PrepbenchError(f"unknown executor '{self.kind}' (choose {', '.join(EXECUTORS)})")
        if self.workers is not None and self.workers < 1:
            raise PrepbenchError("--workers must be at least 1")
        if not self.remote:
            if self.address or self.workers:
                raise PrepbenchError("--ray-address and --workers need --executor ray")
            return
        import_ray()


def import_ray():
    """The ``ray`` module.

    Raises:
        EnvironmentFault: Ray is not installed (one line with the pip command).
    """
    try:
        import ray
    except ImportError:
        raise EnvironmentFault(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray
