"""Benchmark evaluation with lm-evaluation-harness on task definitions shipped in the repo.

The tasks (``evaluation/tasks/*.yaml`` + ``utils.py``) cover the benchmark test splits in the
shared datasets folder (see its README.md and each SOURCE.md): ``gsm8k`` (GSM8K test),
``math500`` (MATH-500), ``mmlu_{medical,law,finance,science,math}`` (MMLU test domain subsets
from ``mmlu/domains.json``), ``medqa`` (MedQA-USMLE 4-option), ``pubmedqa`` (PQA-L test),
``arc_challenge`` (ARC-Challenge test) and ``legalbench`` (a group of 11 LegalBench tasks,
each also runnable alone as ``legalbench_<task>``).

The YAMLs name their data files as ``PREPBENCH_DATASETS/<folder>/<file>``; :func:`materialise_tasks`
copies the task folder to a temporary one with that prefix replaced by the datasets folder
(``--data-dir``, ``$PREPBENCH_DATASETS``, or ``../shared/datasets``), and lm-eval's
``TaskManager(include_path=..., include_defaults=False)`` loads exactly these tasks, so a
shipped name never resolves to a different built-in task.

Scores become :class:`~prepbench.evaluation.records.ScoreRecord` rows (model, benchmark,
metric, score, n); each task's ``metadata.primary_metric`` marks its headline metric.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import yaml

from prepbench.evaluation.records import ScoreRecord
from prepbench.evaluation.train import datasets_dir
from prepbench.tools.decontaminate import TestSet
from prepbench.tools.errors import PrepbenchError

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
PLACEHOLDER = "PREPBENCH_DATASETS"
BACKENDS = ("hf", "vllm")
# process_docs of the tasks that keep part of a shared test file (tasks/utils.py)
_MMLU_DOMAIN = re.compile(r"!function utils\.mmlu_(\w+)")
_LEGALBENCH_TASK = re.compile(r"!function utils\.legalbench_(\w+)")
NOT_METRICS = {"alias", "sample_len", "sample_count", "samples"}  # bookkeeping keys in lm-eval results


class _TaskLoader(yaml.SafeLoader):
    """YAML loader that reads lm-eval task files without resolving ``!function`` tags."""


_TaskLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def _task_yaml(path: Path) -> dict[str, Any]:
    cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader) or {}
    inc = cfg.pop("include", None)
    if inc:
        base = _task_yaml(path.parent / inc)
        base.update(cfg)
        cfg = base
    return cfg


def list_benchmarks() -> dict[str, dict[str, Any]]:
    """Shipped benchmarks: name -> ``{kind: task|group, file, primary_metric, data_files, test_file, subtasks}``.

    ``data_files`` and a task's ``test_file`` (its ``test_split``) are relative to the datasets
    folder; ``subtasks`` lists a group's tasks.
    """
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(TASKS_DIR.glob("*.yaml")):
        cfg = _task_yaml(path)
        meta = cfg.get("metadata") or {}
        if "group" in cfg:
            out[cfg["group"]] = {
                "kind": "group",
                "file": path.name,
                "primary_metric": meta.get("primary_metric"),
                "subtasks": list(cfg.get("task") or []),
                "data_files": [],
            }
        elif "task" in cfg:
            files = (cfg.get("dataset_kwargs") or {}).get("data_files") or {}
            test = files.get(cfg.get("test_split", "test"))
            out[cfg["task"]] = {
                "kind": "task",
                "file": path.name,
                "primary_metric": meta.get("primary_metric"),
                "data_files": sorted({f.replace(PLACEHOLDER + "/", "") for f in files.values()}),
                "test_file": test.replace(PLACEHOLDER + "/", "") if test else None,
                "process_docs": cfg.get("process_docs"),
                "subtasks": [],
            }
    return out


def _data_files_of(name: str, index: dict[str, dict[str, Any]]) -> list[str]:
    spec = index[name]
    if spec["kind"] == "group":
        return sorted({f for t in spec["subtasks"] for f in _data_files_of(t, index)})
    return spec["data_files"]


def materialise_tasks(data_dir: str | os.PathLike, dest: str | os.PathLike, benchmarks: Sequence[str] | None = None) -> Path:
    """Copy the shipped task folder to ``dest`` with data paths pointing into ``data_dir``.

    Also writes ``mmlu_domains.json`` (from ``<data_dir>/mmlu/domains.json``) beside ``utils.py``
    for the MMLU domain tasks.

    Args:
        data_dir: the datasets folder (holding ``gsm8k/``, ``mmlu/``, ...).
        dest: an empty or new folder.
        benchmarks: names whose data files must exist (default: none checked).

    Returns:
        ``dest`` as a Path.

    Raises:
        PrepbenchError: a data file a requested benchmark needs is missing (names the
            benchmark and the file).
    """
    data = Path(data_dir).resolve()
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    index = list_benchmarks()
    for name in benchmarks or []:
        for rel in _data_files_of(name, index):
            if not (data / rel).is_file():
                raise PrepbenchError(
                    f"benchmark '{name}': data file {data / rel} not found (set --data-dir or PREPBENCH_DATASETS)"
                )
    for src in TASKS_DIR.iterdir():
        if src.suffix == ".yaml":
            text = src.read_text(encoding="utf-8").replace(PLACEHOLDER, data.as_posix())
            (out / src.name).write_text(text, encoding="utf-8")
        elif src.suffix == ".py":
            shutil.copyfile(src, out / src.name)
    domains = data / "mmlu" / "domains.json"
    if domains.is_file():
        shutil.copyfile(domains, out / "mmlu_domains.json")
    return out


def benchmark_test_sets(names: Sequence[str], data_dir: str | os.PathLike) -> dict[str, TestSet]:
    """The test items of each benchmark under ``data_dir``, as lm-evaluation-harness evaluates them.

    A task that keeps part of a shared file gets exactly those records: an MMLU domain task
    (``process_docs`` ``utils.mmlu_<domain>``) the subjects ``mmlu/domains.json`` lists for its
    domain, a LegalBench task (``utils.legalbench_<task>``) the records of its ``task``. A group
    whose tasks select from one file by one field is one test set (the union of their values).

    Returns:
        name -> :class:`~prepbench.tools.decontaminate.TestSet`; a group's sets keyed ``group/task``
        when they cannot be merged.

    Raises:
        PrepbenchError: an MMLU domain task without ``mmlu/domains.json`` or its domain in it.
    """
    index, data, out = list_benchmarks(), Path(data_dir), {}
    for name in names:
        spec = index[name]
        tasks = spec["subtasks"] if spec["kind"] == "group" else [name]
        sets = {t: _test_set(t, index[t], data) for t in tasks if index[t].get("test_file")}
        if len({(ts.path, ts.field) for ts in sets.values()}) == 1:
            first = next(iter(sets.values()))
            out[name] = TestSet(first.path, first.field, frozenset().union(*(ts.values for ts in sets.values())))
        else:
            out.update({f"{name}/{t}": ts for t, ts in sets.items()})
    return out


def _test_set(name: str, spec: dict[str, Any], data: Path) -> TestSet:
    """The :class:`TestSet` of one task: its test file, restricted as its ``process_docs`` restricts it."""
    path = data / spec["test_file"]
    docs = str(spec.get("process_docs") or "")
    if m := _LEGALBENCH_TASK.fullmatch(docs):
        return TestSet(path, "task", frozenset([m.group(1)]))
    if not (m := _MMLU_DOMAIN.fullmatch(docs)):
        return TestSet(path)
    domains = data / "mmlu" / "domains.json"
    try:
        subjects = json.loads(domains.read_text(encoding="utf-8"))[m.group(1)]
    except (OSError, ValueError, KeyError) as e:
        raise PrepbenchError(f"{domains}: no subjects for {name} ({type(e).__name__}); the MMLU domain tasks need it") from None
    return TestSet(path, "subject", frozenset(subjects))


def resolve_benchmarks(names: Sequence[str] | str) -> list[str]:
    """Split/strip benchmark names and check them against :func:`list_benchmarks`.

    Raises:
        PrepbenchError: an empty list or an unknown name (with the known names).
    """
    if isinstance(names, str):
        names = names.split(",")
    out = [n.strip() for n in names if n and n.strip()]
    if not out:
        raise PrepbenchError("give at least one benchmark (--benchmarks gsm8k,arc_challenge,...)")
    known = list_benchmarks()
    for n in out:
        if n not in known:
            raise PrepbenchError(f"unknown benchmark '{n}' (choose from {', '.join(sorted(known))})")
    return out


def _model_args(model: str, backend: str, device: str, batch_size: int, dtype: str | None) -> dict[str, Any]:
    if backend == "hf":
        return {"pretrained": model, "device": device, "dtype": dtype or ("float32" if device == "cpu" else "auto")}
    return {"pretrained": model, "dtype": dtype or "auto", "gpu_memory_utilization": 0.8}


def training_provenance(model: str) -> tuple[str, str]:
    """``(base_model, candidate)`` of a model folder trained by prepbench's CPU trainer (read
    from its ``prepbench_train.json`` and training YAML); ``(model, "")`` for any other model."""
    summary = Path(model) / "prepbench_train.json"
    if summary.is_file():
        try:
            info = json.loads(summary.read_text(encoding="utf-8"))
            cfg = yaml.safe_load(Path(info["config"]).read_text(encoding="utf-8"))
            return str(cfg["model_name_or_path"]), str(cfg["dataset"])
        except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
            pass
    return model, ""


def records_from_results(
    results: dict[str, Any],
    model_label: str,
    model_path: str,
    backend: str,
    limit: int | None,
) -> list[ScoreRecord]:
    """Turn an lm-eval results dict (``simple_evaluate``'s return) into score records.

    One record per task/group and metric key (``acc``, ``acc_norm``, ``exact_match,flexible-extract``
    ...; lm-eval's ``,none`` filter suffix dropped), ``n`` from ``n-samples`` (a group's n is
    the sum over its tasks), ``primary`` from the task's ``metadata.primary_metric``.
    """
    index = list_benchmarks()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    base_model, candidate = training_provenance(model_path)
    n_samples = results.get("n-samples", {})

    def n_of(name: str) -> int:
        if name in n_samples:
            return int(n_samples[name].get("effective", n_samples[name].get("original", 0)))
        spec = index.get(name)
        if spec and spec["kind"] == "group":
            return sum(n_of(t) for t in spec["subtasks"])
        return 0

    out: list[ScoreRecord] = []
    for name, res in results.get("results", {}).items():
        primary = (index.get(name) or {}).get("primary_metric")
        for key, value in res.items():
            if key in NOT_METRICS or "_stderr" in key or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            metric = key[:-5] if key.endswith(",none") else key
            stderr = res.get(key.replace(",", "_stderr,", 1)) if "," in key else res.get(f"{key}_stderr")
            stderr = float(stderr) if isinstance(stderr, (int, float)) else None
            out.append(
                ScoreRecord(
                    model=model_label,
                    benchmark=name,
                    metric=metric,
                    score=float(value),
                    n=n_of(name),
                    stderr=stderr,
                    primary=(metric == primary),
                    model_path=model_path,
                    base_model=base_model,
                    candidate=candidate,
                    backend=backend,
                    limit=limit,
                    created=created,
                )
            )
    return out


def evaluate(
    model: str,
    benchmarks: Sequence[str] | str,
    limit: int | None = None,
    backend: str = "hf",
    data_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 1,
    num_fewshot: int | None = None,
    max_gen_toks: int | None = None,
    apply_chat_template: bool = False,
    label: str | None = None,
    dtype: str | None = None,
    bootstrap_iters: int = 1000,
) -> list[ScoreRecord]:
    """Evaluate a model on shipped benchmarks with lm-evaluation-harness (``simple_evaluate``).

    Args:
        model: model folder or hub id (weights loaded by lm-eval's ``hf`` or ``vllm`` model type).
        benchmarks: names from :func:`list_benchmarks` (list or comma-separated string).
        limit: evaluate only the first ``limit`` items of each task (None: all).
        backend: ``hf`` (transformers; CPU or GPU) or ``vllm`` (GPU, needs the vllm package).
        data_dir: datasets folder (default :func:`~prepbench.evaluation.train.datasets_dir`).
        device: torch device for the ``hf`` backend (``cpu``, ``cuda``).
        batch_size: lm-eval batch size.
        num_fewshot: few-shot examples per prompt (default 0, the tasks' own setting).
        max_gen_toks: cap on generated tokens for generation tasks (GSM8K, MATH-500).
        apply_chat_template: render prompts with the model's chat template (for chat-tuned models).
        label: ``model`` field of the records (default: the model folder's name).
        dtype: model dtype passed to lm-eval (default float32 on CPU, auto elsewhere).
        bootstrap_iters: lm-eval's bootstrap iterations for stderr of non-mean metrics; mean
            metrics get the closed-form stderr whenever this is > 0; 0 skips stderr.

    Returns:
        Score records, one per benchmark (and group sub-task) and metric.

    Raises:
        PrepbenchError: unknown benchmark or backend, ``vllm`` without the vllm package, a
            missing data file, or a model lm-eval cannot load.
    """
    names = resolve_benchmarks(benchmarks)
    if backend not in BACKENDS:
        raise PrepbenchError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise PrepbenchError("backend 'vllm' needs the vllm package (a GPU machine: pip install vllm); use --backend hf here")
    import lm_eval
    from lm_eval.tasks import TaskManager

    ddir = datasets_dir(data_dir)
    model_label = label or Path(model.rstrip("/")).name
    gen_kwargs = {"max_gen_toks": int(max_gen_toks)} if max_gen_toks else None
    with tempfile.TemporaryDirectory(prefix="prepbench-tasks-") as tmp:
        include = materialise_tasks(ddir, Path(tmp) / "tasks", names)
        tm = TaskManager(include_path=str(include), include_defaults=False)
        try:
            res = lm_eval.simple_evaluate(
                model=backend,
                model_args=_model_args(model, backend, device, batch_size, dtype),
                tasks=names,
                num_fewshot=num_fewshot,
                batch_size=batch_size,
                limit=limit,
                task_manager=tm,
                gen_kwargs=gen_kwargs,
                apply_chat_template=apply_chat_template,
                log_samples=False,
                bootstrap_iters=bootstrap_iters,
            )
        except OSError as e:
            raise PrepbenchError(f"cannot load model '{model}' ({str(e).splitlines()[0]})") from None
    if res is None:
        raise PrepbenchError("lm-evaluation-harness returned no results")
    return records_from_results(dict(res), model_label, model, backend, limit)


def summary_table(records: Sequence[ScoreRecord]) -> list[dict[str, Any]]:
    """Rows ``{benchmark, metric, score, n}`` of the primary records (all records if none is primary)."""
    prim = [r for r in records if r.primary] or list(records)
    return [{"benchmark": r.benchmark, "metric": r.metric, "score": r.score, "n": r.n} for r in prim]
