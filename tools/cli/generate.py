"""``prepbench generate``: AgoraBench's generation modes (instance, response, enhance) from seed data.

The slots and the runner are :mod:`prepbench.tools.slots` and :mod:`prepbench.agents.modes`; the
seeds are read like any dataset (:func:`prepbench.evaluation.readers.read_seeds`) and the
``--decontaminate`` benchmarks resolve as for ``run --decontaminate``.
"""

from __future__ import annotations

from typing import Any

import typer

from prepbench.tools.cli import options as o
from prepbench.tools.cli.app import app
from prepbench.tools.cli.progress import progress_factory
from prepbench.tools.errors import PrepbenchError

Mode = typer.Option(..., "--mode", help="Generation mode: instance (new instances after seed demonstrations), response, enhance.")


def generate_options(*, mode: str, skill: str, out_dir: str, model: str, fresh: bool, flags: dict[str, Any]):
    """The :class:`~prepbench.tools.slots.GenerateOptions` and the seeds of a ``generate`` command line.

    Raises:
        PrepbenchError: no ``--seeds``, unreadable seeds, an unknown benchmark.
    """
    from prepbench.evaluation.readers import read_seeds
    from prepbench.tools.cli.decontaminate import decontamination_spec
    from prepbench.tools.slots import GenerateOptions

    if not flags.get("seeds"):
        raise PrepbenchError("--seeds: give the seed data (e.g. ../shared/datasets/gsm8k/train.jsonl)")
    seeds = read_seeds(flags["seeds"], flags.get("seed_format"), flags.get("seed_fields"))
    names = flags.get("decontaminate")
    spec = decontamination_spec(names, embed_threshold=None, data_dir=flags.get("data_dir")) if names else None
    opts = GenerateOptions(
        mode=mode,
        seeds=flags["seeds"],
        skill=skill,
        out=out_dir,
        model=model,
        n=flags.get("n"),
        run_seed=flags.get("run_seed", 0),
        slot_retries=flags.get("slot_retries", o.SLOT_RETRIES),
        concurrency=flags.get("concurrency", o.CONCURRENCY),
        max_attempts=flags.get("max_attempts", o.MAX_ATTEMPTS),
        decontamination=spec,
        fresh=fresh,
        model_options=o.model_options(flags, chat=True),
        executor=o.executor_of(flags),
    )
    return opts, seeds


@app.command("generate")
@o.with_options(o.mode_options, o.server_options, o.executor_options)
def generate_cmd(
    mode: str = Mode,
    skill: o.Skill = "general",
    out_dir: str = typer.Option(..., "--out", "-o", help="Run folder (ledger, export, coverage)."),
    model: str = typer.Option(..., "--model", "-m", help="Generator: a chat model spec, e.g. openai:<model>."),
    concurrency: o.Concurrency = o.CONCURRENCY,
    max_attempts: o.MaxAttempts = o.MAX_ATTEMPTS,
    fresh: o.Fresh = False,
    quiet: o.Quiet = False,
    as_json: bool = typer.Option(False, "--json", help="Print the coverage report as JSON."),
    **flags: Any,
) -> None:
    """Generate SFT data from seeds in one of AgoraBench's modes; re-running the same command resumes.

    instance: N new instances, each after a few seed demonstrations and a theme; response: the
    response to each seed instruction; enhance: an improved version of each seed instance.
    """
    from prepbench.agents.modes import run_generate
    from prepbench.tools.cli.run import _report_run

    flags.update(concurrency=concurrency, max_attempts=max_attempts)
    opts, seeds = generate_options(mode=mode, skill=skill, out_dir=out_dir, model=model, fresh=fresh, flags=flags)
    result = run_generate(opts, seeds, progress=progress_factory(quiet or as_json, unit="slots"))
    _report_run(result, as_json)
