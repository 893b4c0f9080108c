"""Generation slots: the work units of the generation modes (``prepbench generate``).

AgoraBench (Kim et al., ACL 2025, "Evaluating Language Models as Synthetic Data Generators",
§3) compares data generators in three settings, each a fixed number of generation calls over
a seed set:

``instance``  slot i shows ``demonstrations`` seed instances and asks for a new, harder one on
              a theme; the demonstrations and the theme are drawn with ``random.Random`` seeded
              by the run seed and i, so a slot's input is fixed before anything is generated.
              (AgoraBench mixes generated instances into later demonstrations; that makes a
              slot depend on earlier outputs, so prepbench draws demonstrations from the seeds
              only and each slot is reproducible on its own.)
``response``  slot i is one seed instruction to answer.
``enhance``   slot i is one seed instance (instruction and response) to improve.

A slot is stored in the ledger's chunk table, like a chunk: its id is a hash of the mode, the
run seed, its number and its input; its ``text`` is its input as JSON; its document is the seed
file. So :meth:`~prepbench.tools.ledger.RunFolder.record_chunk` records a slot's samples, calls
and status in one transaction, exactly once, and ``status``, resume and export work unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from prepbench.tools import __version__
from prepbench.tools.chunking import Chunk
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.executors import ExecutorOptions
from prepbench.tools.hashing import canonical_json, sha256_bytes, sha256_text, short_id
from prepbench.tools.ledger import LEDGER_FILE, RunFolder, RunLock
from prepbench.tools.run import ModelOptions, RunContext, open_existing, wipe_run
from prepbench.tools.skills import Skill, check_skill, load_skill
from prepbench.tools.skills.check import check_examples
from prepbench.tools.validate import Gate

MODES = ("instance", "response", "enhance")
#: Config keys that must match for a generation run to resume.
GUARDED_KEYS = (
    "skill_name",
    "skill_hash",
    "model",
    "generator_version",
    "mode",
    "seeds_hash",
    "n",
    "run_seed",
    "slot_retries",
    "decontaminate",
)


@dataclass(frozen=True)
class Seed:
    """One seed record.

    Attributes:
        id: where it came from (``file:line``, or the record's own id).
        instruction: the instruction (with its input or context, when the record has one).
        response: its response ("" when the seed set has none, e.g. instructions only).
    """

    id: str
    instruction: str
    response: str = ""


@dataclass
class GenerateOptions:
    """Everything ``prepbench generate`` takes.

    Attributes:
        mode: ``instance`` | ``response`` | ``enhance``.
        seeds: the seed file (for the config and messages; the records are passed separately).
        skill, out, model: as for ``prepbench run``.
        n: slots to generate (instance mode: required); response and enhance modes take a seeded
            sample of ``n`` seeds (all seeds when None).
        run_seed: the seed of the draws (demonstrations, themes, the seed sample).
        slot_retries: re-asks of a slot whose reply the gate rejects before it is recorded with
            the rejection's rule (``skipped``, ``all_rejected``).
        concurrency: in-flight slots (and model requests).
        max_attempts: attempts of a slot whose model calls fail before it stays ``failed``.
        decontamination: the benchmarks whose test items a sample must not share an n-gram with
            (a :class:`~prepbench.tools.decontaminate.DecontaminationSpec`; its n-gram rule only:
            such a sample is rejected with rule ``ngram_overlap``); a seed that shares one is left
            out of the run (counted in the config's ``seeds_contaminated``). None: no such check.
        fresh, formats, model_options, executor: as for ``prepbench run`` (with ``--executor ray``
            the slots are asked in Ray workers and committed here, in slot order).
    """

    mode: str
    seeds: str
    skill: str
    out: str
    model: str
    n: int | None = None
    run_seed: int = 0
    slot_retries: int = 2
    concurrency: int = 8
    batch_size: int = 16
    max_attempts: int = 3
    decontamination: Any = None
    fresh: bool = False
    formats: tuple[str, ...] = ("sharegpt", "alpaca", "openai", "samples")
    model_options: ModelOptions = field(default_factory=ModelOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    def __post_init__(self) -> None:
        self.model_options = ModelOptions.coerce(self.model_options)
        if isinstance(self.executor, dict):
            self.executor = ExecutorOptions(**self.executor)


def _check(options: GenerateOptions, seeds: Sequence[Seed]) -> None:
    """Refuse what cannot run, before anything is written.

    Raises:
        PrepbenchError: unknown mode, a bad number, no seeds, or seeds without responses where the mode needs them.
    """
    if options.mode not in MODES:
        raise PrepbenchError(f"--mode {options.mode!r}: choose {', '.join(MODES)}")
    if options.mode == "instance" and options.n is None:
        raise PrepbenchError("--n: instance mode needs the number of instances to generate")
    if options.n is not None and options.n < 1:
        raise PrepbenchError("--n must be at least 1")
    if options.slot_retries < 0 or options.concurrency < 1 or options.max_attempts < 1:
        raise PrepbenchError("--slot-retries must be at least 0, --concurrency and --max-attempts at least 1")
    if Path(options.out).exists() and not Path(options.out).is_dir():
        raise PrepbenchError(f"--out {options.out}: is a file, not a run folder; choose a new or existing folder")
    if not usable_seeds(options.mode, seeds):
        what = (
            "no seed records" if not seeds else f"no seed has a response ({options.mode} mode needs instruction-response seeds)"
        )
        raise PrepbenchError(f"{options.seeds}: {what}; map the fields with --seed-fields instruction=...,response=...")


def usable_seeds(mode: str, seeds: Sequence[Seed]) -> list[Seed]:
    """The seeds a mode can use: instance and enhance modes need both an instruction and a response
    (a record without a response is left out, and counted in the run config's ``seeds_unused``);
    response mode needs an instruction."""
    need_response = mode in ("instance", "enhance")
    return [s for s in seeds if s.instruction.strip() and (s.response.strip() or not need_response)]


def plan_slots(
    mode: str, seeds: Sequence[Seed], n: int | None, run_seed: int, skill: Skill, doc_id: str, doc_path: str
) -> list[Chunk]:
    """The slots of a generation run, as chunks (see the module docstring).

    Returns:
        One :class:`~prepbench.tools.chunking.Chunk` per slot, in slot order: ``heading_path`` is
        ``[mode, "slot i"]`` (with the theme), ``text`` the slot's input as JSON, ``start_line``
        the seed's position (1-based) in the seed list (instance mode: the first demonstration's).
    """
    out: list[Chunk] = []
    if mode == "instance":
        k = min(skill.coverage.modes.demonstrations, len(seeds))
        themes = skill.coverage.modes.themes
        for i in range(n or 0):
            rng = random.Random(f"{run_seed}/{mode}/{i}")
            picks = rng.sample(range(len(seeds)), k)
            theme = rng.choice(themes) if themes else ""
            slot = {"mode": mode, "theme": theme, "demonstrations": [asdict(seeds[j]) for j in picks]}
            out.append(
                _slot_chunk(slot, i, picks[0], doc_id, doc_path, run_seed, [mode, f"slot {i}"] + ([theme] if theme else []))
            )
        return out
    picks = list(range(len(seeds)))
    if n is not None and n < len(seeds):
        picks = sorted(random.Random(f"{run_seed}/{mode}").sample(picks, n))
    for i, j in enumerate(picks):
        seed = asdict(seeds[j]) if mode == "enhance" else {"id": seeds[j].id, "instruction": seeds[j].instruction}
        out.append(_slot_chunk({"mode": mode, "seed": seed}, i, j, doc_id, doc_path, run_seed, [mode, f"slot {i}"]))
    return out


def _slot_chunk(slot: dict, i: int, seed_pos: int, doc_id: str, doc_path: str, run_seed: int, heading: list[str]) -> Chunk:
    text = json.dumps(slot, ensure_ascii=False, indent=1)
    return Chunk(
        chunk_id=short_id("slot", slot["mode"], run_seed, i, sha256_text(text)),
        doc_id=doc_id,
        doc_path=doc_path,
        index=i,
        heading_path=heading,
        start_line=seed_pos + 1,
        end_line=seed_pos + 1,
        text=text,
    )


def slot_input(chunk: Chunk) -> dict[str, Any]:
    """A slot's input (its chunk's ``text`` as JSON): ``{"mode", "theme", "demonstrations"}`` or ``{"mode", "seed"}``.

    Raises:
        PrepbenchError: the chunk is not a generation slot (a run folder of ``prepbench run``).
    """
    try:
        slot = json.loads(chunk.text)
    except json.JSONDecodeError:
        slot = None
    if not isinstance(slot, dict) or slot.get("mode") not in MODES:
        raise PrepbenchError(f"chunk {chunk.chunk_id} is not a generation slot (is this a run folder of `prepbench generate`?)")
    return slot


def _file_hash(path: Path) -> str:
    """SHA-256 of a seed file's bytes ("" for a folder, e.g. a Hugging Face datasets folder)."""
    return sha256_bytes(path.read_bytes()) if path.is_file() else ""


def _ngram_settings(spec: Any) -> dict[str, Any] | None:
    """What the seed-aware gate checks of a decontamination spec (benchmarks and n), for the run config."""
    if spec is None:
        return None
    settings = spec.settings()
    return {"benchmarks": settings["benchmarks"], "ngram": settings["ngram"]}


def _config(options: GenerateOptions, skill: Skill, seeds: Sequence[Seed], generator: Any) -> dict[str, Any]:
    return {
        "skill_name": skill.name,
        "skill_version": skill.version,
        "skill_hash": skill.content_hash,
        "skill_path": str(skill.path),
        "model": options.model,
        "agent": "generate",
        "mode": options.mode,
        "seeds": str(options.seeds),
        # the seed file as the run's "corpus": the dataset card reads its folder's SOURCE.md and lists its hash
        "corpus_root": str(Path(options.seeds).resolve().parent),
        "corpus_hashes": {Path(options.seeds).name: _file_hash(Path(options.seeds))},
        "n_seeds": len(seeds),
        "seeds_hash": sha256_text(canonical_json([asdict(s) for s in seeds])),
        "n": options.n,
        "run_seed": options.run_seed,
        "slot_retries": options.slot_retries,
        "decontaminate": _ngram_settings(options.decontamination),
        "generator": getattr(generator, "name", options.model),
        "generator_version": getattr(generator, "version", "0"),
        "prepbench_version": __version__,
    }


def prepare_generate(options: GenerateOptions, seeds: Sequence[Seed], generator: Any, pool: Any = None) -> RunContext:
    """Check the inputs, then create or resume the generation run's ledger; the context for the mode runner.

    Args:
        options: the run's options.
        seeds: the seed records (read above this layer, e.g. by :func:`prepbench.evaluation.readers.read_samples`).
        generator: the chat-model generator (its name and version go into the config).
        pool: the Ray workers of ``--executor ray`` (None: local); the skill's examples are checked on one.

    Raises:
        PrepbenchError, SkillError: bad options, seeds or skill, before anything is written.
        LedgerError: the run folder holds a different run (names what changed) or is in use.
    """
    _check(options, seeds)
    n_read, seeds = len(seeds), usable_seeds(options.mode, seeds)
    n_usable = len(seeds)
    contamination = None
    if options.decontamination is not None:  # the n-gram rule only: no test item is embedded
        contamination = dataclasses.replace(options.decontamination, embed_threshold=None).build().ngram_match
    if contamination is not None:  # a seed that shares an n-gram with a test item is never shown or used
        seeds = [s for s in seeds if not contamination(f"{s.instruction} {s.response}")]
        if not seeds:
            names = ", ".join(options.decontamination.benchmarks)
            raise PrepbenchError(f"{options.seeds}: every usable seed overlaps a test item of {names}")
    check_skill(options.skill, examples=pool is None)
    skill = load_skill(options.skill)
    if pool is not None:
        pool.call(check_examples, skill)
    if not skill.mode_types:
        raise PrepbenchError(
            f"skill {skill.name}: no generation-mode sample type (a schema with x-prepbench-form: instruction_response); "
            "extend 'general' or add one"
        )
    config = {
        **_config(options, skill, seeds, generator),
        "seeds_unused": n_read - n_usable,
        "seeds_contaminated": n_usable - len(seeds),
    }
    doc_id = short_id("seeds", config["seeds_hash"])
    with RunLock(options.out):
        ledger, resumed = open_existing(options, config, GUARDED_KEYS)
        if not resumed:
            slots = plan_slots(options.mode, seeds, options.n, options.run_seed, skill, doc_id, Path(options.seeds).name)
            if ledger is None:
                if options.fresh and Path(options.out).exists():
                    wipe_run(Path(options.out))
                ledger = RunFolder(Path(options.out) / LEDGER_FILE)
            doc = {
                "doc_id": doc_id,
                "rel_path": Path(options.seeds).name,
                "format": "seeds",
                "content_hash": config["seeds_hash"],
                "chars": sum(len(s.instruction) + len(s.response) for s in seeds),
                "converter": "seeds",
                "n_chunks": len(slots),
                "status": "ingested",
                "reason": None,
            }
            ledger.initialize(config, [doc], slots)
    has_work = bool(ledger.todo_chunks(max_attempts=options.max_attempts, limit=1))
    seed_rows = (
        [(s.id, {"instruction": s.instruction, "response": s.response}) for s in seeds] if options.mode == "instance" else None
    )
    gate = Gate(skill, dedup=has_work, seeds=seed_rows if has_work else None, contamination=contamination if has_work else None)
    if has_work:
        gate.add_many((s["sample_id"], s) for s in ledger.accepted_samples())
    return RunContext(
        options=options,  # type: ignore[arg-type]  # the fields the recorder and finish_run read
        out_dir=Path(options.out),
        ledger=ledger,
        skill=skill,
        validator=gate,
        generator=generator,
        config=config,
        resumed=resumed,
        has_work=has_work,
        pool=pool,
    )
