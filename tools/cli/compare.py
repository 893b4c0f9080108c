"""``prepbench compare``: every agent family on one corpus, then one report."""

from __future__ import annotations

from prepbench.evaluation.compare import compare_cmd  # noqa: F401
