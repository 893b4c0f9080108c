"""The main job: ingest → chunk → ledger (init or resume) → agent → coverage → export.

:func:`prepare_run` checks everything a user can get wrong (skill, corpus, model spec)
*before* anything is written, then opens the run's ledger: a new run is initialized in one
transaction; an existing run resumes when its skill, corpus, model, agent and chunking are
unchanged, and is refused with a message that says what changed otherwise (``fresh=True``
starts over). :func:`finish_run` writes the coverage report and the export. Which agent family
runs in between, and on which generator, is decided above this module
(:func:`prepbench.agents.runner.run_pipeline`): the stages know nothing of agents.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from prepbench.tools import __version__
from prepbench.tools.card import document_sources, provenance
from prepbench.tools.chunking import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, DEFAULT_OVERLAP, chunk_corpus
from prepbench.tools.coverage import coverage_report
from prepbench.tools.decontaminate import DecontaminationSpec, decontaminate_run
from prepbench.tools.errors import EnvironmentFault, LedgerError, PrepbenchError
from prepbench.tools.executors import ExecutorOptions
from prepbench.tools.export import export_samples
from prepbench.tools.ingest import ingest_corpus
from prepbench.tools.ledger import LEDGER_FILE, ChunkOutcome, RunFolder, RunLock
from prepbench.tools.skills import Skill, check_skill, load_skill
from prepbench.tools.skills.check import check_examples
from prepbench.tools.skills.checked import check_examples_once
from prepbench.tools.validate import Gate, screening

#: Config keys that must match for a run to resume.
GUARDED_KEYS = ("skill_name", "skill_hash", "corpus_hashes", "model", "agent", "generator_version", "chunking", "limit")


#: ModelOptions fields read by the agent families themselves, not by the model layer.
FAMILY_OPTIONS = ("direct_mode", "context_tokens", "react_slice", "react_steps_per_chunk")


@dataclass
class ModelOptions:
    """Options of the model layer and of the chat-model agent families (``prepbench run``'s
    chat-model flags). ``None`` means the layer's default. API keys come from the environment
    (``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``); ``api_key`` is for tests and library use.

    Attributes:
        base_url: OpenAI/Anthropic-compatible server URL.
        concurrency: in-flight model requests; rpm, tpm: requests / tokens per minute at most.
        timeout: seconds per request; max_retries: retries of a failed request;
            backoff_base, backoff_max: retry backoff (s); circuit_threshold: failures in a row
            before the run stops.
        max_tokens: output token limit per request; max_tokens_cap: its ceiling when doubled.
        prices: YAML price table merged over the shipped one (USD per 1M tokens).
        structured: ``auto`` | ``json_schema`` | ``tools`` | ``prompt``; parse_retries: re-asks of
            an unparsable reply; examples_per_prompt: worked examples shown per generate prompt.
        judge: grounded LLM judge on every candidate; temperature: sampling temperature.
        direct_mode: ``chunk`` | ``book`` (direct agent); context_tokens: context window for book mode.
        react_slice: chunks per ReAct conversation; react_steps_per_chunk: its step budget per chunk.
        batch: send the requests through the provider's batch API (``openai:``/``anthropic:`` models,
            half the price, results within 24 h); batch_poll: seconds between looks at a job;
            batch_deadline: seconds a job may run before the run stops (a re-run polls it again).
    """

    base_url: str | None = None
    api_key: str | None = None
    concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None
    timeout: float | None = None
    max_retries: int | None = None
    backoff_base: float | None = None
    backoff_max: float | None = None
    circuit_threshold: int | None = None
    max_tokens: int | None = None
    max_tokens_cap: int | None = None
    prices: str | None = None
    structured: str | None = None
    parse_retries: int | None = None
    examples_per_prompt: int | None = None
    judge: bool = False
    temperature: float | None = None
    direct_mode: str = "chunk"
    context_tokens: int = 128_000
    react_slice: int = 4
    react_steps_per_chunk: int = 16
    batch: bool = False
    batch_poll: float | None = None
    batch_deadline: float | None = None

    @classmethod
    def coerce(cls, value: "ModelOptions | dict[str, Any] | None") -> "ModelOptions":
        """A ModelOptions from itself, a dict of its fields, or None.

        Raises:
            PrepbenchError: a key that is not a model option.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        unknown = sorted(set(value) - {f.name for f in fields(cls)})
        if unknown:
            raise PrepbenchError(f"unknown model option {unknown[0]!r} (known: {', '.join(f.name for f in fields(cls))})")
        return cls(**{k: v for k, v in value.items() if v is not None})

    def layer_kwargs(self) -> dict[str, Any]:
        """The options for :func:`prepbench.agents.models.make_generator` (set ones only)."""
        return {k: v for k, v in asdict(self).items() if k not in FAMILY_OPTIONS and v is not None and v is not False}


@dataclass
class RunOptions:
    """Everything ``prepbench run`` takes.

    Attributes:
        corpus: corpus folders/files.
        skill: skill folder or shipped skill name.
        out: run folder (ledger, exports, coverage).
        agent: ``skill`` | ``direct`` | ``react``.
        model: model spec (``extractive``, ``openai:<model>``, ``anthropic:<model>``, ``vllm:<path>``, ``hf:<path>``).
        concurrency: in-flight generator/model requests.
        batch_size: chunks per pass of the agent graph (the offline generator; chat-model chunks
            stream through 2 x concurrency lanes, see :mod:`prepbench.agents.skill`).
        limit: process only the first ``limit`` chunks of the corpus (None = all).
        exclude: extra exclude globs for ingest.
        pdf_engine: ``auto`` | ``pymupdf`` | ``mineru``.
        follow_symlinks: read symbolic links that lead out of the corpus folder (default: skipped, with the reason).
        min_chars, max_chars, overlap: chunking parameters (characters).
        max_attempts: attempts per chunk before it stays failed.
        max_repairs: repair rounds for rejected candidates (chat models).
        revisit: the skill agent's coverage loop: revisit kept chunks for sample types below
            their ``min_share`` (``coverage.yaml``) once every chunk is recorded.
        fresh: discard an existing run in ``out`` and start over.
        formats: export formats.
        model_options: the chat-model options (:class:`ModelOptions`; a dict of its fields is accepted).
        decontamination: benchmark decontamination as a gate step (``--decontaminate``): flagged
            samples are kept in the ledger with their flags and left out of the export.
        executor: where the agent's work runs (:class:`~prepbench.tools.executors.ExecutorOptions`:
            ``local`` asyncio lanes, or Ray workers; a dict of its fields is accepted).
    """

    corpus: list[str]
    skill: str
    out: str
    agent: str = "skill"
    model: str = "extractive"
    concurrency: int = 8
    batch_size: int = 16
    limit: int | None = None
    exclude: list[str] = field(default_factory=list)
    pdf_engine: str = "auto"
    follow_symlinks: bool = False
    min_chars: int = DEFAULT_MIN_CHARS
    max_chars: int = DEFAULT_MAX_CHARS
    overlap: int = DEFAULT_OVERLAP
    max_attempts: int = 3
    max_repairs: int = 2
    revisit: bool = True
    fresh: bool = False
    formats: tuple[str, ...] = ("sharegpt", "alpaca", "openai", "samples")
    model_options: ModelOptions = field(default_factory=ModelOptions)
    decontamination: DecontaminationSpec | None = None
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    def __post_init__(self) -> None:
        self.model_options = ModelOptions.coerce(self.model_options)
        if isinstance(self.executor, dict):
            self.executor = ExecutorOptions(**self.executor)
        if self.model_options.batch:
            provider = self.model.split(":", 1)[0] if ":" in self.model else self.model
            if provider not in ("openai", "anthropic"):
                raise PrepbenchError(
                    f"--batch: model '{self.model}' has no batch API; use an openai:<model> or anthropic:<model> spec"
                )
            if self.executor.remote:
                raise PrepbenchError("--batch runs in this process: leave out --executor ray")
            if self.agent == "react":
                raise PrepbenchError(
                    "--batch: the react agent waits for each reply before its next step (a batch job per step); "
                    "run it without --batch, or use --agent skill or direct"
                )


@dataclass
class RunContext:
    """What an agent family needs: the ledger, skill, validator, generator and options.

    ``on_recorded(outcome)`` must be called after every committed chunk (progress bar);
    an agent calls :meth:`halt` (or sets ``stopped = True``) when it stopped early with chunks
    left pending; ``on_event(kind, message)`` shows a run event (the probe, a stop) to the user.
    """

    options: RunOptions
    out_dir: Path
    ledger: RunFolder
    skill: Skill
    validator: Gate
    generator: Any
    config: dict[str, Any]
    resumed: bool = False
    stopped: bool = False
    corpus_skipped: list[dict] = field(default_factory=list)
    has_work: bool = True  # chunks or coverage-loop revisits left (see :func:`has_work`)
    on_recorded: Callable[[ChunkOutcome], None] = lambda outcome: None
    on_event: Callable[[str, str], None] = lambda kind, message: None
    stop: Any = None  # the exception that stopped the run early (its cause and advice), if any
    recorded: int = 0  # chunks recorded by this run (the Ctrl-C message)
    pool: Any = None  # the Ray workers of ``--executor ray`` (:mod:`prepbench.tools.executors.ray`); None: local
    screening: Any = None  # the gate's screening children (:mod:`prepbench.tools.validate.screening`); None: in process

    def halt(self, exc: BaseException) -> None:
        """Stop the run early because of ``exc`` (the first stop is kept: it says why)."""
        self.stopped = True
        if self.stop is None:
            self.stop = exc


def _diff_config(old: dict, new: dict, keys: tuple[str, ...] = GUARDED_KEYS) -> list[str]:
    changes = []
    for k in keys:
        if old.get(k) == new.get(k):
            continue
        if k == "corpus_hashes":
            o, n = old.get(k) or {}, new.get(k) or {}
            changed = sorted(p for p in o.keys() & n.keys() if o[p] != n[p])
            added = sorted(n.keys() - o.keys())
            removed = sorted(o.keys() - n.keys())
            parts = []
            if changed:
                parts.append(f"{len(changed)} file(s) changed ({', '.join(changed[:3])})")
            if added:
                parts.append(f"{len(added)} added ({', '.join(added[:3])})")
            if removed:
                parts.append(f"{len(removed)} removed ({', '.join(removed[:3])})")
            changes.append("corpus: " + "; ".join(parts))
        elif k == "skill_hash":
            changes.append(f"skill content changed (hash {str(old.get(k))[:12]} -> {str(new.get(k))[:12]})")
        else:
            changes.append(f"{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}")
    return changes


def _run_config(options: RunOptions, skill: Skill, corpus: Any, generator: Any) -> dict[str, Any]:
    """The config stored in a new run's ledger; :data:`GUARDED_KEYS` of it must match to resume."""
    return {
        "skill_name": skill.name,
        "skill_version": skill.version,
        "skill_hash": skill.content_hash,
        "skill_path": str(skill.path),
        "corpus_root": str(corpus.root),
        "corpus_hashes": corpus.hashes(),
        "corpus_skipped": {s.rel_path: s.reason for s in corpus.skipped},
        "model": options.model,
        "agent": options.agent,
        "generator": getattr(generator, "name", options.model),
        "generator_version": getattr(generator, "version", "0"),
        "chunking": {"min_chars": options.min_chars, "max_chars": options.max_chars, "overlap": options.overlap},
        "limit": options.limit,
        "prepbench_version": __version__,
    }


def open_existing(options: Any, config: dict[str, Any], keys: tuple[str, ...] = GUARDED_KEYS) -> tuple[RunFolder | None, bool]:
    """The run folder's ledger and whether it resumes; ``(None, False)`` when a new run starts.

    Args:
        options: anything with ``out`` (the run folder) and ``fresh`` (:class:`RunOptions`, or a
            generation run's options).
        config: the new run's config; the ``keys`` of it must match the stored ones to resume.

    Raises:
        LedgerError: the folder holds a different run and ``fresh`` is not set (names what changed).
    """
    out_dir = Path(options.out)
    ledger_path = out_dir / LEDGER_FILE
    if not ledger_path.exists():
        return None, False
    ledger = RunFolder(ledger_path)
    if ledger.initialized:
        changes = _diff_config(ledger.get_config(), config, keys)
        if changes and not options.fresh:
            ledger.close()
            raise LedgerError(
                f"{out_dir}: this run folder holds a different run ({'; '.join(changes)}); "
                "use --fresh to discard it and start over, or choose another --out"
            )
        if not changes and not options.fresh:
            return ledger, True
        ledger.close()
        return None, False
    if options.fresh:
        ledger.close()
        return None, False
    return ledger, False


def _document_rows(corpus: Any, chunks: list) -> list[dict[str, Any]]:
    """One ``documents`` row per ingested file (with its chunk count) and per skipped file (with its reason)."""
    n_chunks: dict[str, int] = {}
    for c in chunks:
        n_chunks[c.doc_id] = n_chunks.get(c.doc_id, 0) + 1
    ingested = [
        {
            "doc_id": d.doc_id,
            "rel_path": d.rel_path,
            "format": d.format,
            "content_hash": d.content_hash,
            "chars": d.chars,
            "converter": d.converter,
            "n_chunks": n_chunks.get(d.doc_id, 0),
            "status": "ingested",
            "reason": None,
        }
        for d in corpus.documents
    ]
    skipped = [
        {
            "doc_id": f"skipped:{s.rel_path}",
            "rel_path": s.rel_path,
            "format": Path(s.rel_path).suffix.lstrip("."),
            "content_hash": None,
            "chars": 0,
            "converter": None,
            "n_chunks": 0,
            "status": "skipped",
            "reason": s.reason,
        }
        for s in corpus.skipped
    ]
    return ingested + skipped


def _initialize(options: RunOptions, corpus: Any, config: dict[str, Any], ledger: RunFolder | None) -> RunFolder:
    """Chunk the corpus and write a new run's config, documents and chunks in one transaction.

    Raises:
        PrepbenchError: the chunking parameters are invalid (nothing written).
    """
    out_dir = Path(options.out)
    try:
        chunks = list(
            chunk_corpus(corpus.documents, min_chars=options.min_chars, max_chars=options.max_chars, overlap=options.overlap)
        )
    except ValueError as e:
        if ledger is not None:
            ledger.close()
        raise PrepbenchError(f"chunking: {e}") from None
    if options.limit:
        chunks = chunks[: options.limit]
    if ledger is None:
        if options.fresh and out_dir.exists():
            wipe_run(out_dir)
        ledger = RunFolder(out_dir / LEDGER_FILE)
    ledger.initialize(config, _document_rows(corpus, chunks), chunks)
    return ledger


def prepare_run(options: RunOptions, generator: Any, coverage_loop: bool = False, pool: Any = None) -> RunContext:
    """Validate inputs, then create or resume the run's ledger.

    Args:
        options: the run options.
        generator: the generator the agent family will use (its name and version go into the config).
        coverage_loop: the family runs the coverage loop (so planned revisits count as work left).
        pool: the Ray workers of ``--executor ray`` (None: local); the skill's examples are
            checked on one of them (its English parser is loaded), still before anything is written.

    Raises:
        SkillError, CorpusError, ModelSpecError: before anything is written.
        LedgerError: the run folder holds a run with a different skill/corpus/model (names what
            changed), or another process holds its lock (:class:`~prepbench.tools.ledger.RunLockedError`).
    """
    if options.concurrency < 1 or options.batch_size < 1:
        raise PrepbenchError("--concurrency and --batch-size must be at least 1")
    options.executor.check()
    if options.limit is not None and options.limit < 1:
        raise PrepbenchError("--limit must be at least 1")
    if Path(options.out).exists() and not Path(options.out).is_dir():
        raise PrepbenchError(f"--out {options.out}: is a file, not a run folder; choose a new or existing folder")
    check_skill(options.skill, examples=False)  # nothing runs on a broken skill; its examples below
    skill = load_skill(options.skill)
    # a chat-model run's screening children load their English parser while the corpus is read
    screener = screening.start(skill, options, generator)
    try:
        ctx = _prepare(options, generator, coverage_loop, pool, skill)
    except BaseException:
        if screener is not None:
            screener.close()
        raise
    ctx.screening = screener
    return ctx


def _prepare(options: RunOptions, generator: Any, coverage_loop: bool, pool: Any, skill: Skill) -> RunContext:
    """:func:`prepare_run` once the skill is loaded: read the corpus, open or create the ledger, build the gate."""
    corpus = ingest_corpus(
        options.corpus, exclude=options.exclude, pdf_engine=options.pdf_engine, follow_symlinks=options.follow_symlinks
    )
    config = _run_config(options, skill, corpus, generator)
    if hasattr(generator, "sources"):  # who wrote what: for generators that attribute claims
        generator.sources = document_sources(corpus.root, [d.rel_path for d in corpus.documents])
    finish_reading = _read_documents(generator, corpus, pool)
    with RunLock(options.out):  # decide new/resume under the lock: no second writer in between
        ledger, resumed = open_existing(options, config)
        # the examples go through the gate (the English parser loads: seconds), so a bad corpus or a
        # changed run is refused before that; still before anything is written. With Ray on a
        # worker, after the ingest, which ran while the workers started.
        try:  # skipped when this skill passed this gate before (tools/skills/checked.py)
            check_examples_once(skill, (lambda s: pool.call(check_examples, s)) if pool is not None else check_examples)
        except BaseException:
            if ledger is not None:
                ledger.close()
            raise
        if not resumed:  # chunk only when the ledger needs them (a resumed run reads its chunks from the ledger)
            ledger = _initialize(options, corpus, config, ledger)
    work = has_work(ledger, skill, options, coverage_loop)
    decontaminator = _decontamination(ledger, skill, options.decontamination, work)
    if work:
        gate = Gate(skill, decontaminator=decontaminator)
        # rebuild the dedup state from the committed samples, in their canonical order
        gate.add_many((s["sample_id"], s) for s in ledger.accepted_samples())
    else:  # nothing left to do: no dedup state needed
        gate = Gate(skill, dedup=False)
    if work and pool is not None:
        gate.warm_index()  # while the workers read (agents/runner.py warms it for a local run)
    finish_reading()
    return RunContext(
        options=options,
        out_dir=Path(options.out),
        ledger=ledger,
        skill=skill,
        validator=gate,
        generator=generator,
        config=config,
        resumed=resumed,
        corpus_skipped=[asdict(s) for s in corpus.skipped],
        has_work=work,
        pool=pool,
    )


def _read_documents(generator: Any, corpus: Any, pool: Any) -> Callable[[], None]:
    """Start the generator's reading of the whole corpus (document-level context a chunk alone
    lacks: separate opinions, key terms) and return ``finish()``, which completes it.

    With Ray the reading runs on the workers: their parser is loaded (the driver never loads
    one), the book is spread over them (its context takes seconds: Principles of Finance 5 s),
    and the driver chunks the corpus, fills the ledger and builds the gate meanwhile. Locally it
    runs here, now. A generator that reads no documents gets a no-op.
    """
    if not hasattr(generator, "read_documents"):
        return lambda: None
    if pool is not None:
        return generator.read_documents(corpus.documents, start_each=pool.start_each, parts=pool.workers)
    return generator.read_documents(corpus.documents)


def _decontamination(ledger: RunFolder, skill: Skill, spec: DecontaminationSpec | None, work: bool):
    """The gate's decontamination step for this run (None without ``--decontaminate``).

    The ledger keeps the settings the committed samples were checked with; when they differ
    (a run resumed with ``--decontaminate`` added or changed), the committed samples are checked
    first, so every accepted sample ends checked with the same settings. A run resumed without
    it forgets the settings (its new samples go unchecked), so a later ``--decontaminate`` checks all.
    """
    stored = ledger.get_config().get("decontamination")
    if spec is None:
        if work and stored is not None:
            ledger.set_config({"decontamination": None})
        return None
    decontaminator = spec.build()
    if stored != spec.settings():
        decontaminate_run(ledger, skill.renders, decontaminator, spec.settings())
    return decontaminator


def has_work(ledger: RunFolder, skill: Skill, options: RunOptions, coverage_loop: bool = False) -> bool:
    """True when the run has something left to do: a chunk to process, or (skill agent) a
    planned or plannable round of the coverage loop, or a failed revisit with attempts left."""
    if ledger.todo_chunks(max_attempts=options.max_attempts, limit=1):
        return True
    if not coverage_loop or not options.revisit:
        return False
    from prepbench.tools.coverage import plan_revisit_round

    return bool(ledger.planned_revisits() or ledger.retryable_revisits(options.max_attempts) or plan_revisit_round(ledger, skill))


def wipe_run(out_dir: Path) -> None:
    """Remove a run folder's ledger, coverage report and export (``--fresh``)."""
    for name in (LEDGER_FILE, LEDGER_FILE + "-wal", LEDGER_FILE + "-shm", "coverage.json"):
        p = out_dir / name
        if p.exists():
            p.unlink()
    if (out_dir / "export").is_dir():
        shutil.rmtree(out_dir / "export")


def finish_run(ctx: RunContext) -> dict[str, Any]:
    """Write ``coverage.json`` and the export; return ``{"coverage": ..., "export": ...}``."""
    report = coverage_report(ctx.ledger, ctx.skill)
    export = export_run(ctx.ledger, ctx.skill, ctx.out_dir, ctx.options.formats)
    path = ctx.out_dir / "coverage.json"
    try:
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise EnvironmentFault(
            f"{path}: cannot write the coverage report ({e.strerror}); free space or fix permissions, then run again"
        ) from None
    return {"coverage": report, "export": export}


def export_run(
    ledger: RunFolder,
    skill: Skill | None,
    out_dir: Path,
    formats=("sharegpt", "alpaca", "openai", "samples"),
    export_dir: Path | None = None,
) -> dict[str, Any]:
    """Export a run's accepted samples to ``<out_dir>/export`` (or ``export_dir``), with the
    dataset card and manifest; samples a decontamination flag excludes are left out (they stay
    in the ledger). ``skill`` None (it cannot be loaded): the default rendering."""
    name = "prepbench_" + "".join(ch if ch.isalnum() else "_" for ch in Path(out_dir).resolve().name)
    samples = ledger.accepted_sample_blocks(exported=True)  # read by the export's worker processes themselves
    try:
        return export_samples(
            samples,
            skill.renders if skill is not None else {},
            export_dir or (Path(out_dir) / "export"),
            formats,
            name=name,
            provenance=provenance(ledger, skill),
        )
    finally:
        samples.close()
