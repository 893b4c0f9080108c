"""The ``prepbench`` command line (Typer + rich): the top of the stack.

The only package that imports all three of ``prepbench.tools``, ``prepbench.agents`` and
``prepbench.evaluation``. One module per command group; each registers on
:data:`prepbench.tools.cli.app.app`:

``run``      run, status, export          ``skill``    skill check/new/try/list
``generate`` generate (AgoraBench's generation modes from seed data)
``score``    score das/metrics/verify, correlate      ``analyze``  PCA of intrinsic metrics vs PGR
``train``    train config/run, evaluate, pgr
``compare``  compare (agent families)      ``validate`` the gate over any dataset
``decontaminate`` n-gram and embedding overlap with benchmarks' test items

User mistakes raise :class:`~prepbench.tools.errors.PrepbenchError`, printed by
:func:`~prepbench.tools.cli.app.main` as one line ``error: ...`` (no traceback).
"""

from __future__ import annotations

from prepbench.tools.cli import analyze, compare, decontaminate, generate, run, score, skill, train, validate  # noqa: F401
from prepbench.tools.cli.app import app, main

app.add_typer(skill.skill_app, name="skill")
app.add_typer(score.score_app, name="score")
app.command("correlate")(score.correlate_cmd)
app.command("analyze")(analyze.analyze_cmd)
app.add_typer(train.train_app, name="train")
app.command("evaluate")(train.evaluate_cmd)
app.command("pgr")(train.pgr_cmd)
app.command("compare")(compare.compare_cmd)
app.command("validate")(validate.validate_cmd)
app.command("decontaminate")(decontaminate.decontaminate_cmd)

__all__ = ["app", "main"]
