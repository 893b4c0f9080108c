"""Command-line options shared by ``run``, ``compare`` and ``skill try``, declared once.

Each option is a ``typing.Annotated`` alias (type + ``typer.Option`` with its flag and help);
its default is the constant next to it, so a command declares ``concurrency: Concurrency =
CONCURRENCY``. :func:`model_options` turns the chat-model flags (:data:`MODEL_FLAGS`) into a
:class:`~prepbench.tools.run.ModelOptions`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Optional

import typer

from prepbench.tools.chunking import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, DEFAULT_OVERLAP
from prepbench.tools.executors import ExecutorOptions
from prepbench.tools.run import ModelOptions

# -- corpus, skill and chunking --------------------------------------------------------
Corpus = Annotated[list[str], typer.Option("--corpus", "-c", help="Corpus folder or files (repeatable).")]
Skill = Annotated[str, typer.Option("--skill", "-s", help="Skill folder or shipped skill name.")]
SKILL = "finance"
Limit = Annotated[Optional[int], typer.Option("--limit", help="Only the first N chunks of the corpus.")]
Exclude = Annotated[list[str], typer.Option("--exclude", help="Extra exclude glob (repeatable).")]
PdfEngine = Annotated[str, typer.Option("--pdf-engine", help="PDF converter: auto, pymupdf or mineru.")]
PDF_ENGINE = "auto"
FollowSymlinks = Annotated[
    bool,
    typer.Option(
        "--follow-symlinks",
        help="Read symbolic links that lead out of the corpus folder (by default they are skipped, with the reason).",
    ),
]
MinChars = Annotated[int, typer.Option("--min-chars", help="Merge sections shorter than this (chars).")]
MIN_CHARS = DEFAULT_MIN_CHARS
MaxChars = Annotated[int, typer.Option("--max-chars", help="Maximum chunk size (chars).")]
MAX_CHARS = DEFAULT_MAX_CHARS
Overlap = Annotated[int, typer.Option("--overlap", help="Overlap between pieces of a split section (chars).")]
OVERLAP = DEFAULT_OVERLAP

# -- the run loop ----------------------------------------------------------------------
Concurrency = Annotated[int, typer.Option("--concurrency", help="In-flight model requests.")]
CONCURRENCY = 8
BatchSize = Annotated[
    int,
    typer.Option(
        "--batch-size",
        help="Chunks per pass of the agent graph (offline generator; chat-model chunks stream, 2 x --concurrency in flight).",
    ),
]
BATCH_SIZE = 16
MaxAttempts = Annotated[int, typer.Option("--max-attempts", help="Attempts per chunk before it stays failed.")]
MAX_ATTEMPTS = 3
MaxRepairs = Annotated[int, typer.Option("--max-repairs", help="Repair rounds for rejected samples (chat models).")]
MAX_REPAIRS = 2
Revisit = Annotated[
    bool,
    typer.Option(
        "--revisit/--no-revisit",
        help="Coverage loop (skill agent): revisit kept chunks for sample types below their min_share.",
    ),
]
REVISIT = True
Fresh = Annotated[bool, typer.Option("--fresh", help="Discard an existing run in --out and start over.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]

# -- the chat-model flags (ModelOptions) -----------------------------------------------
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="OpenAI/Anthropic-compatible server URL.")]
Rpm = Annotated[Optional[float], typer.Option("--rpm", help="Model requests per minute at most.")]
Tpm = Annotated[Optional[float], typer.Option("--tpm", help="Model tokens (in + out) per minute at most.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Timeout of one model request (seconds).")]
TIMEOUT = 120.0
MaxRetries = Annotated[int, typer.Option("--max-retries", help="Retries of a failed model request (429/5xx/timeouts).")]
MAX_RETRIES = 5
MaxTokens = Annotated[
    int, typer.Option("--max-tokens", help="Output token limit of a model request (doubled when a reply is cut).")
]
MAX_TOKENS = 2048
Prices = Annotated[
    Optional[str], typer.Option("--prices", help="YAML price table merged over the shipped one (USD per 1M tokens).")
]
Structured = Annotated[str, typer.Option("--structured", help="Structured output: auto, json_schema, tools or prompt.")]
STRUCTURED = "auto"
GROUNDED_JUDGE_HELP = "Grounded LLM judge on every candidate (chat models)."
GroundedJudge = Annotated[bool, typer.Option("--judge", help=GROUNDED_JUDGE_HELP)]
#: ``compare`` spends ``--judge`` on the verifier's judge model (DVS); there the grounded judge is this flag
GroundedJudgeCompare = Annotated[bool, typer.Option("--grounded-judge", help=GROUNDED_JUDGE_HELP)]
DirectMode = Annotated[
    str,
    typer.Option(
        "--direct-mode",
        help="Agent direct: one prompt per chunk, or per book (as much as the context holds).",
    ),
]
DIRECT_MODE = "chunk"
ContextTokens = Annotated[int, typer.Option("--context-tokens", help="Model context window (tokens), for --direct-mode book.")]
CONTEXT_TOKENS = 128000

Batch = Annotated[
    bool,
    typer.Option(
        "--batch",
        help="Send the model requests through the provider's batch API (openai:/anthropic: models): each step "
        "of the graph for all pending chunks is one job, at half the price, answered within 24 h; a re-run polls the same jobs.",
    ),
]
BatchPoll = Annotated[
    Optional[float], typer.Option("--batch-poll", help="Seconds between two looks at a batch job (default 30).")
]
BatchDeadline = Annotated[
    Optional[float],
    typer.Option(
        "--batch-deadline", help="Seconds a batch job may run before the run stops (default 90000; a re-run polls it again)."
    ),
]

# -- the generation modes (generate, compare --mode) -------------------------------------
Seeds = Annotated[
    Optional[str],
    typer.Option("--seeds", help="Seed data: JSONL/JSON (GSM8K, MATH, Dolly, Alpaca, ShareGPT, ...) or a datasets folder."),
]
SeedFormat = Annotated[Optional[str], typer.Option("--seed-format", help="Format of the seeds (default: detect).")]
SeedFields = Annotated[
    Optional[str], typer.Option("--seed-fields", help="Field mapping of the seeds, e.g. instruction=question,response=answer.")
]
N = Annotated[
    Optional[int],
    typer.Option("--n", help="Slots: instances to generate (instance mode), or seeds to answer/improve (default: all)."),
]
RunSeed = Annotated[int, typer.Option("--run-seed", help="Seed of the draws: demonstrations, themes, the seed sample.")]
SlotRetries = Annotated[
    int, typer.Option("--slot-retries", help="Re-asks of a slot whose reply the gate rejects, before it is recorded rejected.")
]
SLOT_RETRIES = 2
Decontaminate = Annotated[
    Optional[str],
    typer.Option("--decontaminate", help="Benchmarks a sample may not share a 13-gram with, e.g. gsm8k,math500."),
]
DataDir = Annotated[
    Optional[str],
    typer.Option("--data-dir", help="Datasets folder of the benchmarks (default $PREPBENCH_DATASETS or ../shared/datasets)."),
]
Temperature = Annotated[
    Optional[float], typer.Option("--temperature", help="Sampling temperature of the generator (default: the server's).")
]

# -- the executor (run, generate) ---------------------------------------------------------
Executor = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where generation runs: local (asyncio lanes in this process) or ray (Ray workers; the ledger stays here).",
    ),
]
EXECUTOR = "local"
RayAddress = Annotated[
    Optional[str],
    typer.Option("--ray-address", help="A running Ray cluster (ray start --head prints it); default: a local Ray instance."),
]
Workers = Annotated[
    Optional[int], typer.Option("--workers", help="Ray workers, one CPU each (default: one per CPU of the cluster).")
]


#: The chat-model flags, by parameter name, that make up a command's ModelOptions.
MODEL_FLAGS = (
    "base_url",
    "concurrency",
    "rpm",
    "tpm",
    "timeout",
    "max_retries",
    "max_tokens",
    "prices",
    "structured",
    "judge",
    "direct_mode",
    "context_tokens",
    "temperature",
    "batch",
    "batch_poll",
    "batch_deadline",
)


def model_options(flags: Mapping[str, Any], *, chat: bool) -> ModelOptions:
    """The :class:`~prepbench.tools.run.ModelOptions` of a command's chat-model flags.

    Args:
        flags: the command's parameters by name (its ``locals()``); the :data:`MODEL_FLAGS`
            it has are taken, the rest keep ModelOptions' defaults.
        chat: the run uses a chat model; else (the offline ``extractive`` generator) only
            ``base_url`` is kept, the other flags mean nothing to it.
    API keys come from the environment only.
    """
    if not chat:  # --batch is kept, so that the run refuses it in one line
        return ModelOptions(base_url=flags.get("base_url"), batch=bool(flags.get("batch")))
    return ModelOptions(**{k: flags[k] for k in MODEL_FLAGS if k in flags})


# -- option groups: declared once, added to run, compare and skill try by with_options -----
def chunking_options(
    limit: Limit = None,
    exclude: Exclude = [],
    pdf_engine: PdfEngine = PDF_ENGINE,
    follow_symlinks: FollowSymlinks = False,
    min_chars: MinChars = MIN_CHARS,
    max_chars: MaxChars = MAX_CHARS,
    overlap: Overlap = OVERLAP,
) -> None:
    """Corpus and chunking options (a group for :func:`with_options`; never called)."""


def loop_options(
    concurrency: Concurrency = CONCURRENCY,
    batch_size: BatchSize = BATCH_SIZE,
    max_attempts: MaxAttempts = MAX_ATTEMPTS,
    max_repairs: MaxRepairs = MAX_REPAIRS,
    revisit: Revisit = REVISIT,
) -> None:
    """Run-loop options (a group for :func:`with_options`; never called)."""


def server_options(
    base_url: BaseUrl = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    timeout: Timeout = TIMEOUT,
    max_retries: MaxRetries = MAX_RETRIES,
    max_tokens: MaxTokens = MAX_TOKENS,
    prices: Prices = None,
    structured: Structured = STRUCTURED,
) -> None:
    """Model-server options (a group for :func:`with_options`; never called)."""


def batch_options(batch: Batch = False, batch_poll: BatchPoll = None, batch_deadline: BatchDeadline = None) -> None:
    """Provider batch-API options (a group for :func:`with_options`; never called)."""


def family_options(direct_mode: DirectMode = DIRECT_MODE, context_tokens: ContextTokens = CONTEXT_TOKENS) -> None:
    """Agent-family options (a group for :func:`with_options`; never called)."""


def mode_options(
    seeds: Seeds = None,
    seed_format: SeedFormat = None,
    seed_fields: SeedFields = None,
    n: N = None,
    run_seed: RunSeed = 0,
    slot_retries: SlotRetries = SLOT_RETRIES,
    decontaminate: Decontaminate = None,
    data_dir: DataDir = None,
    temperature: Temperature = None,
) -> None:
    """Generation-mode options (a group for :func:`with_options`; never called)."""


def executor_options(executor: Executor = EXECUTOR, ray_address: RayAddress = None, workers: Workers = None) -> None:
    """Executor options (a group for :func:`with_options`; never called)."""


def executor_of(flags: Mapping[str, Any]) -> ExecutorOptions:
    """The :class:`~prepbench.tools.executors.ExecutorOptions` of a command's executor flags."""
    return ExecutorOptions(flags.get("executor") or EXECUTOR, flags.get("ray_address"), flags.get("workers"))


def option_names(*groups: Callable[..., None]) -> tuple[str, ...]:
    """The parameter names of option groups, in order."""
    return tuple(n for g in groups for n in inspect.signature(g).parameters)


def with_options(*groups: Callable[..., None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options of ``groups`` to a Typer command, which takes them as ``**flags``.

    Typer reads a command's parameters from its signature; this decorator gives the command
    one flat signature (its own parameters, then each group's), so every shared option is
    declared once, here, and ``run``, ``compare`` and ``skill try`` cannot drift apart.
    Apply it below ``@app.command``.
    """

    def decorate(cmd: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(cmd, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
        shared = [p for g in groups for p in inspect.signature(g, eval_str=True).parameters.values()]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own + shared]

        @functools.wraps(cmd)
        def command(**kwargs: Any) -> Any:
            return cmd(**kwargs)

        command.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # Typer must see the flat signature, not the command's own
        return command

    return decorate
