"""The gate over a dataset made anywhere: one verdict per record, in input order.

``prepbench validate`` (:mod:`prepbench.tools.cli.validate`) reads the records; this module
decides them with the same :class:`~prepbench.tools.validate.gate.Gate` a run uses:

- a record in prepbench's sample shape (``sample_type`` and its fields) is screened by its
  type's JSON Schema, the skill's filter rules and the duplicate check, as in a run;
- a record without ``sample_type`` (plain ``question``/``answer``, or a ShareGPT, Alpaca or
  OpenAI-chat turn pair read as question and answer) takes the one sample type whose schema
  it satisfies, if exactly one does; otherwise its schema is not checked and only the rules
  that apply to every sample type (and the duplicate check) decide it.

A record's ``context`` (or ``source``) is the source text the chunk-bound rules check against;
without it those rules are skipped, as :meth:`Gate.screen` does with no chunk text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from prepbench.tools.validate.gate import Gate
from prepbench.tools.validate.rules import Verdict

#: fields of an input record that carry its source text rather than sample content
CONTEXT_FIELDS = ("context", "source")


@dataclass
class DatasetRecord:
    """One input record to gate.

    Attributes:
        where: ``file:line`` (or a run's sample id), for messages and the output.
        sample: the sample dict (with ``sample_type`` when the record had one).
        context: the source text the sample was made from, or None.
    """

    where: str
    sample: dict
    context: str | None = None


@dataclass
class DatasetVerdicts:
    """The gate's verdicts over a dataset.

    Attributes:
        rows: one dict per record, in input order: ``where``, ``verdict`` (``accepted`` or
            ``rejected``), ``rule`` (None when accepted), ``detail``, ``sample_type`` (given or
            inferred, None when neither) and ``schema`` (``checked`` or ``not applicable``).
        rejected: rejections counted by rule.
    """

    rows: list[dict] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        """Number of accepted records."""
        return sum(1 for r in self.rows if r["verdict"] == "accepted")


def gate_dataset(gate: Gate, records: Iterable[DatasetRecord]) -> DatasetVerdicts:
    """Decide every record with ``gate`` (schema, filter rules, duplicates), registering the
    accepted ones so a later duplicate in the dataset is caught.

    Returns:
        :class:`DatasetVerdicts`, rows in input order.
    """
    out = DatasetVerdicts()
    for rec in records:
        sample = dict(rec.sample)
        if sample.get("sample_type") is None and (inferred := gate.infer_type(sample)):
            sample["sample_type"] = inferred
        typed = sample.get("sample_type") is not None
        v: Verdict = gate.screen(sample, rec.context) if typed else gate.check_rules(sample, rec.context)
        if v.ok:
            v = gate.check_duplicate(sample)
        if v.ok:
            gate.add(sample, rec.where)
        else:
            out.rejected[v.rule] += 1
        out.rows.append(
            {
                "where": rec.where,
                "verdict": "accepted" if v.ok else "rejected",
                "rule": None if v.ok else v.rule,
                "detail": None if v.ok else v.detail,
                "sample_type": sample.get("sample_type"),
                "schema": "checked" if typed else "not applicable",
            }
        )
    return out
