"""CLI of the scoring backend: ``prepbench score das|metrics|verify`` and ``prepbench correlate``.

Registered in ``tools/cli.py``. Heavy libraries (torch, sentence-transformers, scipy) are
imported inside the commands so ``prepbench --help`` stays fast. Results are one JSON object,
written to ``--out`` (or printed to stdout); a short summary table goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from prepbench.tools.errors import PrepbenchError

score_app = typer.Typer(
    help="Score an SFT dataset: DAS against a domain proxy, diversity/quality metrics, LLM data verifier.",
    no_args_is_help=True,
)
_err = Console(stderr=True)

_FMT_HELP = "dataset format: sharegpt, openai, alpaca, fields, run, hf (default: detect)"
_FIELDS_HELP = "field mapping for plain JSONL, e.g. instruction=question,response=answer (fields joined with +)"


def _emit(result: dict, out: Optional[Path]) -> None:
    text = json.dumps(result, indent=2, ensure_ascii=False, default=float)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        _err.print(f"wrote {out}")
    else:
        typer.echo(text)


def _brief(values: dict) -> str:
    """``name=value`` for the float values (and the means of summary dicts) of one metric set."""
    items = []
    for k, v in values.items():
        if k in ("n", "seconds", "dim"):
            continue
        if isinstance(v, float):
            items.append(f"{k}={v:.4g}")
        elif isinstance(v, dict) and isinstance(v.get("mean"), float):
            items.append(f"{k}={v['mean']:.4g}")
    return ", ".join(items)


def _sigma(value: str) -> float | str:
    if value == "median":
        return "median"
    try:
        return float(value)
    except ValueError:
        raise PrepbenchError(f"--sigma {value!r}: use a positive number or 'median'") from None


@contextlib.contextmanager
def _encoder(spec: str, base_url: Optional[str], batch_size: int, options) -> Iterator:
    """The encoder of ``spec``; with ``--executor ray`` one that encodes as Ray Data batches on the
    cluster (started here when there is none, and stopped after), sharing the local one's cache entries."""
    from prepbench.tools.embed import make_encoder

    enc = make_encoder(spec, base_url=base_url, batch_size=batch_size)
    if not options.remote:
        yield enc
        return
    from prepbench.tools.executors.ray import connect
    from prepbench.tools.executors.ray_embed import ray_encoder

    started = connect(options, options.workers or 1)
    try:
        yield ray_encoder(enc, spec, options, base_url=base_url, batch_size=batch_size)
    finally:
        if started:
            import ray

            ray.shutdown()


@score_app.command("das")
def das_cmd(
    candidates: List[Path] = typer.Argument(..., help="candidate dataset(s): JSONL/JSON file, run folder or datasets folder"),
    proxy: Path = typer.Option(..., "--proxy", help="domain proxy dataset (embedded once, cached)"),
    fmt: Optional[str] = typer.Option(None, "--format", help=_FMT_HELP),
    fields: Optional[str] = typer.Option(None, "--fields", help=_FIELDS_HELP),
    proxy_format: Optional[str] = typer.Option(None, "--proxy-format", help="format of the proxy (default: detect)"),
    proxy_fields: Optional[str] = typer.Option(None, "--proxy-fields", help="field mapping of the proxy"),
    encoder: str = typer.Option("minilm", help="minilm (offline all-MiniLM-L6-v2) | st:<name|path> | openai:<model>"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible /v1 URL for an openai: encoder"),
    sigma: str = typer.Option("1.0", help="RBF bandwidth σ, or 'median' (median heuristic)"),
    unbiased: bool = typer.Option(False, "--unbiased/--biased", help="U-statistic instead of the default biased V-statistic"),
    max_samples: int = typer.Option(5000, help="at most this many samples per side"),
    seed: int = typer.Option(42, help="subsampling seed"),
    precision: str = typer.Option("float64", help="kernel block precision: float64 or float32 (faster); sums are float64"),
    cache: Optional[Path] = typer.Option(None, help="embedding cache SQLite file (default ~/.cache/prepbench/embeddings.sqlite)"),
    batch_size: int = typer.Option(64, help="encoder batch size"),
    executor: str = typer.Option(
        "local", "--executor", help="Where texts missing from the cache are encoded: local (here) or ray (Ray Data batches)."
    ),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="A running Ray cluster; default: a local Ray instance."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", help="Ray encoder actors, one CPU each (default: one per CPU)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the JSON result here"),
) -> None:
    """DAS = −MMD between each candidate and the domain proxy (DataPrep-Bench §4)."""
    from prepbench.evaluation.das import das_score
    from prepbench.evaluation.readers import read_samples
    from prepbench.tools.embed import EmbeddingCache
    from prepbench.tools.executors import ExecutorOptions

    options = ExecutorOptions(executor, ray_address, workers)
    options.check()
    store = EmbeddingCache(cache)
    proxy_texts = [s.text for s in read_samples(proxy, proxy_format, proxy_fields)]
    results = []
    with _encoder(encoder, base_url, batch_size, options) as enc:
        for cand in candidates:
            texts = [s.text for s in read_samples(cand, fmt, fields)]
            r = das_score(
                texts,
                proxy_texts,
                enc,
                store,
                sigma=_sigma(sigma),
                unbiased=unbiased,
                max_samples=max_samples,
                seed=seed,
                dtype=precision,
            )
            results.append({"candidate": str(cand), "proxy": str(proxy), **r})
    table = Table(title=f"DAS vs {proxy}")
    for col in ("candidate", "n", "MMD²", "MMD", "DAS"):
        table.add_column(col)
    for r in results:
        table.add_row(r["candidate"], str(r["n_candidate"]), f"{r['mmd2']:.6f}", f"{r['mmd']:.6f}", f"{r['das']:.6f}")
    _err.print(table)
    _emit({"proxy": str(proxy), "encoder": enc.encoder_id, "results": results}, out)


def _metric_sets(metrics: str, model_for: dict[str, tuple[Optional[str], str]]) -> tuple[list[str], dict[str, str]]:
    """``--metrics`` as set names, and the model of each model-based set (``model_for``: set -> (path, flag)).

    Raises PrepbenchError for an unknown set or a model-based set without its model flag.
    """
    from prepbench.evaluation.judge_metrics import JUDGE_SETS
    from prepbench.evaluation.metrics import WEIGHT_FREE_SETS
    from prepbench.evaluation.model_metrics import MODEL_METRIC_SETS

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if names == ["all"]:
        names = list(WEIGHT_FREE_SETS)
    known = WEIGHT_FREE_SETS + MODEL_METRIC_SETS + JUDGE_SETS
    bad = [m for m in names if m not in known]
    if bad:
        raise PrepbenchError(f"--metrics: unknown metric set(s) {bad}; known: {', '.join(known)}")
    models = {}
    for m in names:
        if m in model_for:
            path, flag = model_for[m]
            if not path:
                raise PrepbenchError(f"metric {m!r} needs {flag} <model name or path>")
            models[m] = path
    return names, models


@score_app.command("metrics")
def metrics_cmd(
    dataset: Path = typer.Argument(..., help="dataset: JSONL/JSON file, run folder or datasets folder"),
    metrics: str = typer.Option(
        "lexical,ngram,compression,length,embedding",
        help="metric sets: lexical, ngram, compression, length, embedding, diversity, perplexity, response_ppl, ifd, "
        "reward, edu, deita_quality, deita_complexity, judge_quality, judge_difficulty (or 'all' weight-free)",
    ),
    fmt: Optional[str] = typer.Option(None, "--format", help=_FMT_HELP),
    fields: Optional[str] = typer.Option(None, "--fields", help=_FIELDS_HELP),
    encoder: str = typer.Option("minilm", help="encoder for the embedding set (as for `score das`)"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="URL for an openai: encoder"),
    cache: Optional[Path] = typer.Option(None, help="embedding cache SQLite file"),
    lm: Optional[str] = typer.Option(None, "--lm", help="causal LM (name or path) for perplexity, response_ppl and ifd"),
    judge: Optional[str] = typer.Option(None, "--judge", help="judge chat model of judge_quality/judge_difficulty"),
    judge_base_url: Optional[str] = typer.Option(None, "--judge-base-url", help="judge server URL"),
    judge_domain: str = typer.Option("general", "--judge-domain", help="rubric domain of the judge metrics (general, math)"),
    judge_n: int = typer.Option(200, "--judge-n", help="samples the judge grades (seeded subset)"),
    reward_model: Optional[str] = typer.Option(None, help="reward model (sequence classification)"),
    edu_model: Optional[str] = typer.Option(None, help="FineWeb-Edu classifier, e.g. HuggingFaceFW/fineweb-edu-classifier"),
    deita_quality_model: Optional[str] = typer.Option(None, help="e.g. hkust-nlp/deita-quality-scorer"),
    deita_complexity_model: Optional[str] = typer.Option(None, help="e.g. hkust-nlp/deita-complexity-scorer"),
    allow_download: bool = typer.Option(False, help="let transformers download missing weights"),
    device: str = typer.Option("cpu", help="torch device for model-based metrics"),
    max_length: int = typer.Option(1024, help="max tokens per sample for model-based metrics"),
    max_samples: int = typer.Option(5000, help="at most this many samples (seeded)"),
    seed: int = typer.Option(42),
    out: Optional[Path] = typer.Option(None, "--out", "-o"),
) -> None:
    """Weight-free and model-based dataset metrics (one JSON object, one dict per metric set)."""
    import time

    from prepbench.evaluation.metrics import WEIGHT_FREE_SETS, compute_metrics
    from prepbench.evaluation.readers import read_samples, subsample

    t0 = time.perf_counter()
    names, models = _metric_sets(
        metrics,
        {
            "perplexity": (lm, "--lm"),
            "response_ppl": (lm, "--lm"),
            "ifd": (lm, "--lm"),
            "reward": (reward_model, "--reward-model"),
            "edu": (edu_model, "--edu-model"),
            "deita_quality": (deita_quality_model, "--deita-quality-model"),
            "deita_complexity": (deita_complexity_model, "--deita-complexity-model"),
        },
    )
    samples_all = read_samples(dataset, fmt, fields)
    samples = subsample(samples_all, max_samples, seed)
    embed = None
    if "embedding" in names or "diversity" in names:
        from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder

        enc = make_encoder(encoder, base_url=base_url)
        store = EmbeddingCache(cache)
        embed = lambda texts: embed_texts(texts, enc, store, description="embedding dataset")  # noqa: E731
    res = compute_metrics(samples, [m for m in names if m in WEIGHT_FREE_SETS], embed=embed)
    if models:
        from prepbench.evaluation.model_metrics import compute_model_metrics

        res["metrics"].update(
            compute_model_metrics(samples, models, allow_download=allow_download, device=device, max_length=max_length)
        )
    res["metrics"].update(_judge_metrics(samples, names, judge, judge_base_url, judge_domain, judge_n, seed))
    result = {
        "dataset": str(dataset),
        "n_total": len(samples_all),
        "seed": seed,
        "max_samples": max_samples,
        **res,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    table = Table("set", "values", title=f"metrics of {dataset} (n={res['n']})")
    for k, v in res["metrics"].items():
        table.add_row(k, _brief(v))
    _err.print(table)
    _emit(result, out)


def _judge_metrics(samples, names, judge, base_url, domain, n, seed) -> dict:
    """The LLM-judged sets among ``names`` (``judge_quality``, ``judge_difficulty``), graded by ``judge``.

    Raises:
        PrepbenchError: a judge set without ``--judge``.
    """
    from prepbench.evaluation.judge_metrics import JUDGE_SETS
    from prepbench.evaluation.judge_metrics import judge as run_judge

    wanted = [m for m in names if m in JUDGE_SETS]
    if not wanted:
        return {}
    if not judge:
        raise PrepbenchError(f"metric {wanted[0]!r} needs --judge <chat model spec>, e.g. openai:<model>")
    chat = make_judge(judge, base_url)
    return {m: run_judge(samples, chat, m, domain=domain, n=n, seed=seed) for m in wanted}


@score_app.command("verify")
def verify_cmd(
    dataset: Path = typer.Argument(..., help="dataset: JSONL/JSON file, run folder or datasets folder"),
    model: str = typer.Option(..., "--model", help="judge chat model spec, e.g. openai:Qwen2.5-72B-Instruct"),
    task: str = typer.Option(..., "--task", help="the target task the data should serve, one line"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL"),
    fmt: Optional[str] = typer.Option(None, "--format", help=_FMT_HELP),
    fields: Optional[str] = typer.Option(None, "--fields", help=_FIELDS_HELP),
    n: int = typer.Option(200, "--n", help="random subset size"),
    seed: int = typer.Option(42),
    concurrency: int = typer.Option(4, help="parallel judge calls"),
    out: Optional[Path] = typer.Option(None, "--out", "-o"),
) -> None:
    """LLM data verifier (DataChef rubric A-E) and its DVS."""
    from prepbench.evaluation.readers import read_samples
    from prepbench.evaluation.verifier import verify

    samples = read_samples(dataset, fmt, fields)
    chat = make_judge(model, base_url)
    res = verify(samples, chat, task, n=n, seed=seed, max_concurrency=concurrency)
    res = {"dataset": str(dataset), "model": model, **res}
    _err.print(
        f"DVS = {res['dvs']:.4f} over {res['n_scored']} samples; labels {res['counts']}"
        if res["dvs"] is not None
        else "DVS undefined: no judge answer named a label"
    )
    _emit(res, out)


def make_judge(spec: str, base_url: Optional[str] = None):
    """A LangChain chat model for the judge (temperature 0): via ``prepbench.agents.models.specs.make_chat_model``."""
    from prepbench.agents.models.specs import make_chat_model

    return make_chat_model(spec, base_url=base_url, temperature=0.0, max_tokens=256)


def correlate_cmd(
    scores: Path = typer.Argument(..., help="metric scores CSV/JSON: candidate, metric, value (or wide)"),
    records: Path = typer.Argument(..., help="performance records CSV/JSON: candidate, base_model, benchmark, score"),
    out: Path = typer.Option(Path("correlations"), "--out", "-o", help="output folder"),
    alpha: float = typer.Option(0.05, help="significance level for flags"),
    direction: Optional[str] = typer.Option(None, help="expected signs, e.g. ppl=-1,dvs=+1 (default: mmd -1, others +1)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="one scatter plot PNG per metric"),
) -> None:
    """Pearson/Spearman of metrics vs downstream performance, per base model and averaged (Tables E/F)."""
    from prepbench.evaluation.correlate import (
        AVG,
        correlate,
        load_records,
        load_scores,
        markdown_table,
        parse_directions,
        write_outputs,
    )

    sc = load_scores(scores)
    rec = load_records(records)
    cells = correlate(sc, rec, parse_directions(direction), alpha=alpha)
    paths = write_outputs(cells, sc, rec, out, plots=plots)
    typer.echo(markdown_table(cells, AVG))
    _err.print(f"wrote {paths['markdown']}, {paths['csv']} and {len(paths['plots'])} plot(s)")
