"""The gate: the one way every agent family and mode decides a candidate sample's fate.

Order (first failure wins, its rule is stored with the rejection):

1. **screen** (:meth:`Gate.screen`): the sample type's JSON Schema, then the skill's filter
   rules (``filters.yaml``) against the chunk text, then (generation modes) the seed-aware
   step (:mod:`.seeds`: ``seed_duplicate``, ``ngram_overlap``). Families screen as soon as a
   candidate exists, so a chat model can be asked to repair it or told why it was refused.
2. **admit** (:meth:`Gate.admit_chunk`): at record time, in corpus order, each screened
   candidate is checked for duplicates (exact, MinHash and, when the skill sets
   ``dedup.semantic_threshold``, embedding cosine) against every accepted sample of the run (and
   the chunk's earlier ones) and registered when accepted. Because admission follows the ledger's
   commit order, a resumed run that re-registers the committed samples in their canonical
   order (:meth:`Gate.add_many`) rebuilds exactly the same dedup state.
3. **decontaminate** (``run --decontaminate``, a :class:`~prepbench.tools.decontaminate.Decontaminator`):
   the chunk's accepted samples, as the export renders them, are checked against benchmarks'
   test items; a flagged sample stays accepted (the dedup state does not depend on it) and
   carries its flags into the ledger in the chunk's transaction, and the export leaves it out.

The optional grounded LLM judge (``--judge``) runs between screen and admit in the skill family,
as a rule named ``grounded_judge``: it needs the model, which this layer does not know.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass
from typing import Any, Iterable

from prepbench.tools.ledger import SampleRecord, sample_id
from prepbench.tools.skills.refs import validator as schema_validator
from prepbench.tools.validate.dedup import Deduplicator
from prepbench.tools.validate.rules import PASS, Verdict, build_rules
from prepbench.tools.validate.seeds import ContaminationMatcher, SeedCheck
from prepbench.tools.validate.text import as_texts


@dataclass
class Candidate:
    """A candidate sample with its screening verdict.

    Attributes:
        sample: the sample dict (``sample_type``, ``chunk_id``, ``evidence`` and its type's fields).
        verdict: the :meth:`Gate.screen` verdict (None: not screened yet).
        attempts: 1, plus one per repair.
    """

    sample: dict
    verdict: Verdict | None = None
    attempts: int = 1


class Gate:
    """A skill's gate: schema, filter rules, duplicates.

    Args:
        skill: the loaded skill (schemas, ``filters.yaml``).
        dedup: keep duplicate state (False for one-off checks such as ``skill check``'s examples).
        decontaminator: flags accepted samples that copy a benchmark's test items
            (:class:`~prepbench.tools.decontaminate.Decontaminator`; None: no such step).
        seeds: ``(seed_id, record)`` a candidate must not duplicate (instance generation); None: no such rule.
        contamination: the benchmark n-gram matcher (see :class:`~.seeds.SeedCheck`); None: no such rule.

    Raises:
        SkillError: a filter rule that does not compile (unknown kind, bad regex, ...).
    """

    def __init__(
        self,
        skill,
        dedup: bool = True,
        decontaminator: Any = None,
        seeds: Iterable[tuple[str, dict]] | None = None,
        contamination: ContaminationMatcher | None = None,
    ):
        self.skill = skill
        self.decontaminator = decontaminator
        self.rules = build_rules(skill)
        self.validators = {t: schema_validator(t, skill.schemas) for t in skill.schemas}
        self.dedup_enabled = dedup
        self.dedup = skill.filters.dedup
        self._dups = Deduplicator(self.dedup) if dedup else None
        self._seed_check = SeedCheck(self.dedup, seeds, contamination) if seeds or contamination else None

    def warm(self) -> None:
        """Load what the first screening needs and has not loaded yet: the English parser and the
        MinHash index (datasketch). A run against a model server calls it in a thread while the
        server answers the first requests, so the server does not wait for it. Errors are left to
        the first screening, which reports them (a thread would print a trace).
        """
        from prepbench.tools.nlp import pipeline

        with contextlib.suppress(Exception):  # reported where the parser is first used for real
            pipeline()
            self.warm_index()

    def warm_index(self) -> None:
        """Make the duplicate index now (it imports datasketch and scipy, about a second): a run
        calls it while it sets up, so the import does not stall its first requests' event loop
        (the first duplicate check made it, with every request slot in flight)."""
        if self._dups is not None:
            self._dups.warm()

    # -- screening ------------------------------------------------------------------
    def infer_type(self, sample: dict) -> str | None:
        """The one sample type whose JSON Schema ``sample`` (given no ``sample_type``) satisfies,
        else None: zero or several fits are not guessed."""
        fits = [t for t in sorted(self.validators) if self._errors({**sample, "sample_type": t}, t) == 0]
        return fits[0] if len(fits) == 1 else None

    def _errors(self, sample: dict, t: str) -> int:
        return sum(1 for _ in self.validators[t].iter_errors(sample))

    def _closest_types(self, sample: dict, n: int = 2) -> str:
        """``"concept_qa (1 error), process_qa (2 errors)"``: the types ``sample`` comes closest to."""
        counts = sorted((self._errors({**sample, "sample_type": t}, t), t) for t in self.validators)
        return ", ".join(f"{t} ({k} error{'s' if k != 1 else ''})" for k, t in counts[:n])

    def check_schema(self, sample: dict) -> Verdict:
        """The sample type's JSON Schema: PASS or rule ``schema`` with the first error's path.

        A sample without ``sample_type`` that fits exactly one of the skill's types takes that
        type (set in ``sample``, so it is recorded with it); otherwise the rejection names the
        types it came closest to.
        """
        t = sample.get("sample_type")
        if t is None and self.validators:
            t = self.infer_type(sample)
            if t is None:
                return Verdict(
                    False, "schema", f"no sample_type, and it fits none of the types; closest: {self._closest_types(sample)}"
                )
            sample["sample_type"] = t
        if not isinstance(t, str) or t not in self.validators:  # a model may send any JSON value here
            return Verdict(False, "schema", f"unknown sample_type {json.dumps(t, ensure_ascii=False)[:80]}")
        err = next(iter(sorted(self.validators[t].iter_errors(sample), key=lambda e: list(e.path))), None)
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            return Verdict(False, "schema", f"{where}: {err.message[:200]}")
        return PASS

    def check_rules(self, sample: dict, chunk_text: str | None) -> Verdict:
        """The skill's filter rules that apply to the sample's type, in ``filters.yaml`` order."""
        t = sample.get("sample_type")
        for rule in self.rules:
            if rule.sample_types is not None and t not in rule.sample_types:
                continue
            v = rule.check(sample, chunk_text)
            if not v.ok:
                return v
        return PASS

    def screen(self, sample: dict, chunk_text: str | None) -> Verdict:
        """Schema, then filter rules (``chunk_text`` None skips the chunk-bound rules), then the
        seed-aware step when the gate has seeds or a contamination matcher."""
        v = self.check_schema(sample)
        v = self.check_rules(sample, chunk_text) if v.ok else v
        if v.ok and self._seed_check is not None:
            v = self._seed_check.check(sample)
        return v

    def screener(self) -> "Gate":
        """A gate that screens exactly as this one (schema, rules, seeds, n-gram matcher) and keeps no
        duplicate state: what a Ray worker screens with (duplicates are decided where the ledger is)."""
        gate = copy.copy(self)
        gate.dedup_enabled, gate._dups, gate.decontaminator = False, None, None
        return gate

    def screen_many(self, items: list[tuple[dict, str | None]]) -> list[Verdict]:
        """:meth:`screen` of each ``(sample, chunk_text)``, in order, with the same verdicts: the
        texts the language rules parse (their checks' ``parses(sample)``) are parsed first in one batch
        (:func:`~prepbench.tools.nlp.parse_many`), which costs about a third of parsing them one by one."""
        readers = [r.check.parses for r in self.rules if hasattr(r.check, "parses")]
        if readers and len(items) > 1:
            from prepbench.tools.nlp import parse_many

            parse_many(t for s, _ in items if isinstance(s, dict) for read in readers for t in read(s) if t.strip())
        return [self.screen(s, text) for s, text in items]

    # -- duplicates -----------------------------------------------------------------
    def dedup_text(self, sample: dict) -> str:
        """The text compared for duplicates (the skill's ``dedup.fields``)."""
        return " ".join(t for f in self.dedup.fields for t in as_texts(sample.get(f)))

    def check_duplicate(self, sample: dict) -> Verdict:
        """PASS or ``exact_duplicate`` / ``near_duplicate`` of an accepted sample; registers nothing."""
        return self._dups.check(sample) if self._dups is not None else PASS

    def add(self, sample: dict, key: str | None = None) -> None:
        """Register an accepted sample (key: its sample id) so later duplicates are caught."""
        if self._dups is not None:
            self._dups.add(sample, key)

    def add_many(self, samples: Iterable[tuple[str, dict]]) -> None:
        """Register committed samples ``(sample_id, sample)`` in their canonical order (resume)."""
        if self._dups is not None:
            self._dups.add_many(samples)

    def check(self, sample: dict, chunk_text: str | None) -> Verdict:
        """Screen, then the duplicate check, without registering: a one-off verdict."""
        v = self.screen(sample, chunk_text)
        return self.check_duplicate(sample) if v.ok else v

    # -- the chunk's final verdicts -------------------------------------------------------
    def admit_chunk(self, chunk_id: str, candidates: Iterable[Candidate]) -> list[SampleRecord]:
        """Final verdicts of a chunk's screened candidates, in order.

        A candidate that passed screening is checked for duplicates and, when accepted,
        registered at once (a duplicate inside the same chunk is caught); one that failed keeps
        its screening rule. Call it once per chunk, in commit order.

        Returns:
            One :class:`~prepbench.tools.ledger.SampleRecord` per candidate (accepted or rejected).
        """
        records: list[SampleRecord] = []
        candidates = list(candidates)
        if self._dups is not None:  # one embedding batch per chunk for the semantic check
            self._dups.prefetch([c.sample for c in candidates if c.verdict is not None and c.verdict.ok])
        for cand in candidates:
            s, v = cand.sample, cand.verdict or Verdict(False, "schema", "not screened")
            st = str(s.get("sample_type", "?"))
            if v.ok:
                v = self.check_duplicate(s)
                if v.ok:
                    self.add(s, sample_id(chunk_id, s["sample_type"], s))
                    records.append(SampleRecord(st, s, "accepted", attempts=cand.attempts))
                    continue
            records.append(SampleRecord(st, s, "rejected", v.rule, v.detail, cand.attempts))
        if self.decontaminator is not None:
            self._flag_contamination(records)
        return records

    def _flag_contamination(self, records: list[SampleRecord]) -> None:
        """Attach to each accepted record the decontamination flags of its sample (one pass per chunk)."""
        from prepbench.tools.decontaminate import sample_texts

        accepted = [i for i, r in enumerate(records) if r.status == "accepted"]
        if accepted:
            rep = self.decontaminator.run([(str(i), *sample_texts(records[i].data, self.skill.renders)) for i in accepted])
            for f in rep.flags:
                records[int(f.sample)].contamination.append(f.as_dict())
