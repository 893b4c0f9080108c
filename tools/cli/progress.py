"""The run progress bar shared by ``run``, ``skill try`` and ``compare``."""

from __future__ import annotations

import contextlib
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True)


def progress_factory(quiet: bool, unit: str = "chunks"):
    """A progress factory for :func:`~prepbench.agents.runner.run_pipeline`: a rich bar of chunks
    (``unit``: slots for ``generate``) done/total with samples accepted, rate and cost (tokens), on
    stderr; none when ``quiet``."""

    def factory(ctx):
        counts = ctx.ledger.counts()
        total = counts["chunks"]["total"]
        done0 = total - counts["chunks"]["pending"] - counts["chunks"]["failed"]
        state = {
            "accepted": counts["samples"]["accepted"],
            "cost": counts["calls"]["cost_usd"],
            "tokens": counts["calls"]["input_tokens"] + counts["calls"]["output_tokens"],
            "t0": time.perf_counter(),
            "new": 0,
        }
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("· {task.fields[accepted]} samples"),
            TextColumn("· {task.fields[rate]}"),
            TextColumn("· {task.fields[cost]}"),
            TimeElapsedColumn(),
            console=err,
            disable=quiet,
            transient=False,
        )
        task = progress.add_task(
            "resuming" if ctx.resumed else "running",
            total=total,
            completed=done0,
            accepted=state["accepted"],
            rate="-",
            cost=f"${state['cost']:.4f}",
        )

        def on_recorded(outcome):
            state["new"] += 1
            state["accepted"] += sum(1 for s in outcome.samples if s.status == "accepted")
            state["cost"] += sum(c.cost_usd for c in outcome.calls)
            state["tokens"] += sum(c.input_tokens + c.output_tokens for c in outcome.calls)
            dt = max(time.perf_counter() - state["t0"], 1e-6)
            cost = f"${state['cost']:.4f}" + (f" ({state['tokens']:,} tok)" if state["tokens"] else "")
            progress.update(task, advance=1, accepted=state["accepted"], rate=f"{state['new'] / dt:.1f} {unit}/s", cost=cost)

        def on_event(kind, message):  # the probe's finding, a stop: on stderr (above the bar), quiet or not
            console = err if quiet else progress.console
            console.print(escape(message), style="yellow" if kind == "stop" else "dim", highlight=False, soft_wrap=True)

        ctx.on_recorded = on_recorded
        ctx.on_event = on_event
        return progress if not quiet else contextlib.nullcontext()

    return factory
