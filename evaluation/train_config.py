"""Training configs for the construction track (DataPrep-Bench): recipes, the LlamaFactory
argument and ``dataset_info.json`` checks, and :func:`write_configs` (runs + Dolly-15k mix and the
Dolly-only reference). See :mod:`prepbench.evaluation.train` for the overview.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from prepbench.tools.errors import PrepbenchError

HERE = Path(__file__).resolve().parent
RECIPES_DIR = HERE / "recipes"
ARGS_FILE = HERE / "llamafactory_args.json"
TEMPLATES_FILE = HERE / "chat_templates.yaml"
DOLLY_FILE = "dolly/databricks-dolly-15k-nocategory.jsonl"
DOLLY_DATASET = "dolly15k"
RECIPE_KEYS = {"name", "description", "source", "deepspeed", "llamafactory"}
DEEPSPEED_CONFIGS = {"zero3": ("deepspeed/zero3.json", "ds_z3_config.json")}
# keys of a training YAML prepbench must set itself (never from a recipe)
REQUIRED_KEYS = ("model_name_or_path", "stage", "finetuning_type", "dataset", "dataset_dir", "template", "output_dir")


def datasets_dir(override: str | os.PathLike | None = None) -> Path:
    """The shared datasets folder: ``override``, else ``$PREPBENCH_DATASETS``, else
    ``<repo>/../shared/datasets`` (the layout of the project's work area)."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("PREPBENCH_DATASETS")
    if env:
        return Path(env).expanduser().resolve()
    return (HERE.parent.parent / "shared" / "datasets").resolve()


# ------------------------------------------------------------------ LlamaFactory schema


@lru_cache(maxsize=1)
def llamafactory_schema() -> dict[str, Any]:
    """The shipped LlamaFactory argument names and ``dataset_info.json`` schema
    (``evaluation/llamafactory_args.json``; each class names its source file and commit)."""
    return json.loads(ARGS_FILE.read_text(encoding="utf-8"))


def llamafactory_arg_names() -> dict[str, str]:
    """Argument name -> LlamaFactory argument class (ModelArguments, DataArguments, ...)."""
    out: dict[str, str] = {}
    for cls, spec in llamafactory_schema()["classes"].items():
        for name in spec["names"]:
            out.setdefault(name, cls)
    return out


def validate_training_config(cfg: dict[str, Any], where: str, require: Sequence[str] = REQUIRED_KEYS) -> None:
    """Check a LlamaFactory training YAML's keys and a few values, as ``llamafactory-cli`` would.

    Args:
        cfg: the parsed YAML mapping.
        where: the file (or recipe) named in errors.
        require: keys that must be present.

    Raises:
        PrepbenchError: an unknown key (named), a missing required key, or a value outside
            LlamaFactory's choices (``stage``, ``finetuning_type``, ``mix_strategy``).
    """
    if not isinstance(cfg, dict):
        raise PrepbenchError(f"{where}: a LlamaFactory training config must be a mapping of argument names")
    names = llamafactory_arg_names()
    for key in cfg:
        if key not in names:
            raise PrepbenchError(
                f"{where}: unknown LlamaFactory argument '{key}' (not in Model/Data/Training/Finetuning/"
                f"GeneratingArguments; see {ARGS_FILE.name})"
            )
    for key in require:
        if cfg.get(key) in (None, ""):
            raise PrepbenchError(f"{where}: missing LlamaFactory argument '{key}'")
    for key, allowed in llamafactory_schema()["choices"].items():
        if key in cfg and cfg[key] not in allowed:
            raise PrepbenchError(f"{where}: field '{key}': '{cfg[key]}' is not one of {', '.join(allowed)}")


def validate_dataset_info(info: dict[str, Any], where: str) -> None:
    """Check a ``dataset_info.json`` against LlamaFactory's documented schema (``data/README.md``).

    Raises:
        PrepbenchError: naming the dataset entry and field: unknown entry key, no file/hub
            source, unknown ``formatting``, a column not allowed for that formatting, ``tags``
            on an Alpaca entry, or an unknown tag.
    """
    schema = llamafactory_schema()["dataset_info"]
    if not isinstance(info, dict) or not info:
        raise PrepbenchError(f"{where}: dataset_info must be a non-empty JSON object of dataset entries")
    for name, entry in info.items():
        at = f"{where}: dataset '{name}'"
        if not isinstance(entry, dict):
            raise PrepbenchError(f"{at}: entry must be an object")
        for key in entry:
            if key not in schema["entry_keys"]:
                raise PrepbenchError(f"{at}: unknown field '{key}'")
        if not any(entry.get(k) for k in schema["source_keys"]):
            raise PrepbenchError(f"{at}: needs one of {', '.join(schema['source_keys'])}")
        fmt = entry.get("formatting", "alpaca")
        if fmt not in schema["formatting"]:
            raise PrepbenchError(f"{at}: field 'formatting': '{fmt}' is not one of {', '.join(schema['formatting'])}")
        for col in entry.get("columns", {}) or {}:
            if col not in schema["columns_by_formatting"][fmt]:
                raise PrepbenchError(f"{at}: field 'columns.{col}' is not a {fmt} column")
        tags = entry.get("tags")
        if tags is not None:
            if fmt != "sharegpt":
                raise PrepbenchError(f"{at}: field 'tags' is only for formatting 'sharegpt'")
            for tag in tags:
                if tag not in schema["tags"]:
                    raise PrepbenchError(f"{at}: unknown field 'tags.{tag}'")


# ------------------------------------------------------------------ recipes and templates


def list_recipes() -> list[str]:
    """Names of the shipped recipes (``evaluation/recipes/*.yaml``), sorted."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    """Load and check a recipe: a shipped name (``dataprep-construction``) or a YAML path.

    A recipe is ``{name, description, source, deepspeed?: zero3, llamafactory: {argument: value}}``.

    Raises:
        PrepbenchError: unknown recipe, unreadable YAML, an unknown top-level field, an unknown
            DeepSpeed preset, or an unknown LlamaFactory argument (named).
    """
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = RECIPES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise PrepbenchError(
                f"unknown recipe '{name_or_path}' (choose from {', '.join(list_recipes())}, or give a YAML path)"
            )
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise PrepbenchError(f"{path}{':' + str(line + 1) if line is not None else ''}: invalid YAML") from None
    if not isinstance(recipe, dict):
        raise PrepbenchError(f"{path}: a recipe must be a YAML mapping")
    for key in recipe:
        if key not in RECIPE_KEYS:
            raise PrepbenchError(f"{path}: unknown recipe field '{key}' (allowed: {', '.join(sorted(RECIPE_KEYS))})")
    if not isinstance(recipe.get("llamafactory"), dict):
        raise PrepbenchError(f"{path}: field 'llamafactory' must map LlamaFactory argument names to values")
    ds = recipe.get("deepspeed")
    if ds is not None and ds not in DEEPSPEED_CONFIGS:
        raise PrepbenchError(f"{path}: field 'deepspeed': '{ds}' is not one of {', '.join(DEEPSPEED_CONFIGS)}")
    for key in ("model_name_or_path", "dataset", "dataset_dir", "output_dir", "template", "deepspeed"):
        if key in recipe["llamafactory"]:
            raise PrepbenchError(f"{path}: field 'llamafactory.{key}' is set by prepbench, not by a recipe")
    validate_training_config(recipe["llamafactory"], str(path), require=("stage", "finetuning_type"))
    recipe.setdefault("name", path.stem)
    return recipe


@lru_cache(maxsize=1)
def chat_templates() -> dict[str, dict[str, Any]]:
    """LlamaFactory template name -> ``{source, families, chat_template}`` (``chat_templates.yaml``)."""
    return yaml.safe_load(TEMPLATES_FILE.read_text(encoding="utf-8"))["templates"]


def template_for(base_model: str) -> str | None:
    """The LlamaFactory template name for a base model name, by family pattern; None if unknown."""
    name = base_model.lower()
    for tname, spec in chat_templates().items():
        for pattern in spec.get("families") or []:
            if re.search(pattern, name):
                return tname
    return None


# ------------------------------------------------------------------ data


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise PrepbenchError(f"{path}:{i}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise PrepbenchError(f"{path}:{i}: a row must be a JSON object")
            yield i, row


def dolly_to_alpaca(path: str | os.PathLike, limit: int | None = None) -> list[dict[str, str]]:
    """Read Dolly-15k JSONL (``instruction``, ``context``, ``response``) as Alpaca rows
    ``{instruction, input: context, output: response}``, in file order.

    Args:
        path: the Dolly JSONL file.
        limit: keep only the first ``limit`` rows (for smoke runs).

    Raises:
        PrepbenchError: missing file, bad JSON, or a row lacking a field (names file:line).
    """
    p = Path(path)
    if not p.is_file():
        raise PrepbenchError(f"{p}: Dolly-15k file not found (pass --dolly PATH)")
    out: list[dict[str, str]] = []
    for i, row in _read_jsonl(p):
        for key in ("instruction", "response"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise PrepbenchError(f"{p}:{i}: Dolly row lacks field '{key}'")
        out.append({"instruction": row["instruction"], "input": row.get("context") or "", "output": row["response"]})
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise PrepbenchError(f"{p}: no Dolly rows")
    return out


def read_run_export(run_dir: str | os.PathLike) -> tuple[str, list[dict]]:
    """Accepted samples of a prepbench run folder: ``("sharegpt"|"alpaca", rows)``.

    A folder with a ledger is read through :class:`~prepbench.tools.ledger.RunFolder`: its
    accepted samples rendered by the run's skill into the ShareGPT rows the exporter writes
    (:func:`prepbench.evaluation.run_samples.sharegpt_rows`). A folder without one (an export
    copied elsewhere) is read from ``<run>/export/sharegpt.jsonl`` (preferred) or
    ``<run>/export/alpaca.jsonl``, every row's shape checked.

    Raises:
        PrepbenchError: no such folder, no ledger and no export file, no accepted samples, or a
            malformed export row (names file:line and field).
    """
    from prepbench.evaluation.run_samples import has_ledger, sharegpt_rows

    run = Path(run_dir)
    if not run.is_dir():
        raise PrepbenchError(f"{run}: run folder not found")
    if has_ledger(run):
        fmt, rows = "sharegpt", sharegpt_rows(run)
        if not rows:
            raise PrepbenchError(f"{run}: the run holds no accepted samples")
        return fmt, rows
    share, alp = run / "export" / "sharegpt.jsonl", run / "export" / "alpaca.jsonl"
    if share.is_file():
        fmt, rows = "sharegpt", _read_sharegpt_export(share)
    elif alp.is_file():
        fmt, rows = "alpaca", _read_alpaca_export(alp)
    else:
        raise PrepbenchError(
            f"{run}: no export/sharegpt.jsonl or export/alpaca.jsonl (run `prepbench run` to the export step first)"
        )
    if not rows:
        raise PrepbenchError(f"{run}: the export holds no accepted samples")
    return fmt, rows


def _read_sharegpt_export(share: Path) -> list[dict]:
    rows = []
    for i, row in _read_jsonl(share):
        conv = row.get("conversations")
        if not isinstance(conv, list) or len(conv) < 2:
            raise PrepbenchError(f"{share}:{i}: field 'conversations' must list at least 2 messages")
        for j, m in enumerate(conv):
            if not isinstance(m, dict) or m.get("from") not in ("human", "gpt", "system") or not isinstance(m.get("value"), str):
                raise PrepbenchError(f"{share}:{i}: field 'conversations[{j}]' needs 'from' (human|gpt) and 'value'")
        if conv[-1]["from"] != "gpt":
            raise PrepbenchError(f"{share}:{i}: field 'conversations' must end with a 'gpt' message")
        rows.append(row)
    return rows


def _read_alpaca_export(alp: Path) -> list[dict]:
    rows = []
    for i, row in _read_jsonl(alp):
        for key in ("instruction", "output"):
            if not isinstance(row.get(key), str):
                raise PrepbenchError(f"{alp}:{i}: Alpaca row lacks field '{key}'")
        rows.append(row)
    return rows


def _dataset_entry(file_name: str, fmt: str, has_system: bool) -> dict[str, Any]:
    if fmt == "sharegpt":
        entry: dict[str, Any] = {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "system_tag": "system",
            },
        }
    else:
        entry = {"file_name": file_name, "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    if has_system:
        entry["columns"]["system"] = "system"
    return entry


def _write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def _dump_yaml(path: Path, cfg: dict[str, Any], header: str) -> None:
    body = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
    path.write_text(header + body, encoding="utf-8")


def write_configs(
    runs: Sequence[str | os.PathLike],
    recipe: str,
    base_model: str,
    out_dir: str | os.PathLike,
    dolly: str | os.PathLike | None = None,
    dolly_limit: int | None = None,
    template: str | None = None,
) -> dict[str, Any]:
    """Write the LlamaFactory set-up for ``runs`` mixed with Dolly-15k, plus the Dolly-only reference.

    Layout of ``out_dir``::

        data/<run>.<format>.jsonl   the run's accepted samples (copied, checked)
        data/dolly15k.alpaca.jsonl  Dolly-15k as Alpaca (context -> input)
        data/dataset_info.json      LlamaFactory dataset entries for the files above
        mix.yaml                    recipe + dataset: <runs>,dolly15k  (output_dir saves/mix)
        reference.yaml              recipe + dataset: dolly15k         (output_dir saves/reference)
        ds_z3_config.json           when the recipe sets deepspeed: zero3
        manifest.json               what went in: runs, row counts, recipe, base model, template

    Paths inside the YAMLs are absolute, so ``llamafactory-cli train mix.yaml`` works from any
    folder on the machine that wrote them.

    Args:
        runs: prepbench run folders (with a ledger, or with ``export/``; see :func:`read_run_export`).
        recipe: recipe name or YAML path (:func:`load_recipe`).
        base_model: model path or hub id (``model_name_or_path``).
        out_dir: output folder (created).
        dolly: Dolly-15k JSONL; default ``<datasets>/dolly/databricks-dolly-15k-nocategory.jsonl``.
        dolly_limit: use only the first N Dolly rows (smoke runs; default all 15,015).
        template: LlamaFactory template name; default by base model family (chat_templates.yaml).

    Returns:
        The manifest dict (also written to ``manifest.json``), with ``mix_config`` and
        ``reference_config`` paths.

    Raises:
        PrepbenchError: no runs, a bad run export, missing Dolly file, unknown recipe, or a base
            model whose family has no known template and no ``template`` given.
    """
    if not runs:
        raise PrepbenchError("give at least one run folder")
    rec = load_recipe(recipe)
    tname = template or template_for(base_model)
    if tname is None:
        known = ", ".join(chat_templates())
        raise PrepbenchError(f"cannot tell the chat template of base model '{base_model}': pass --template NAME (e.g. {known})")
    out = Path(out_dir).resolve()
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {}
    manifest_runs = [_write_run_dataset(run, data, info) for run in runs]
    dolly_path = Path(dolly) if dolly else datasets_dir() / DOLLY_FILE
    dolly_rows = dolly_to_alpaca(dolly_path, dolly_limit)
    dolly_fname = f"{DOLLY_DATASET}.alpaca.jsonl"
    _write_jsonl(data / dolly_fname, dolly_rows)
    info[DOLLY_DATASET] = _dataset_entry(dolly_fname, "alpaca", has_system=False)
    validate_dataset_info(info, str(data / "dataset_info.json"))
    (data / "dataset_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    configs = _write_training_yamls(rec, base_model, tname, out, data, [r["dataset"] for r in manifest_runs])
    manifest = {
        "recipe": rec["name"],
        "recipe_source": rec.get("source", ""),
        "base_model": base_model,
        "template": tname,
        "runs": manifest_runs,
        "dolly": {"file": str(dolly_path.resolve()), "rows": len(dolly_rows), "dataset": DOLLY_DATASET},
        "mix_config": configs["mix"],
        "reference_config": configs["reference"],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _write_run_dataset(run: str | os.PathLike, data: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Copy one run's accepted samples to ``data/<name>.<format>.jsonl`` and add its ``info`` entry.

    Returns:
        the manifest row ``{"run", "dataset", "format", "rows"}``.
    """
    fmt, rows = read_run_export(run)
    name = f"prepbench_{_safe_name(Path(run).resolve().name)}"
    k = 2
    while name in info:
        name = f"{name}_{k}"
        k += 1
    fname = f"{name}.{fmt}.jsonl"
    n = _write_jsonl(data / fname, rows)
    info[name] = _dataset_entry(fname, fmt, has_system=any(r.get("system") for r in rows))
    return {"run": str(Path(run).resolve()), "dataset": name, "format": fmt, "rows": n}


def _write_training_yamls(
    rec: dict[str, Any], base_model: str, tname: str, out: Path, data: Path, run_names: list[str]
) -> dict[str, str]:
    """Write ``mix.yaml`` (runs + Dolly) and ``reference.yaml`` (Dolly only), plus the DeepSpeed
    config when the recipe asks for one. Returns ``{"mix": path, "reference": path}``."""
    common: dict[str, Any] = {"model_name_or_path": base_model, "template": tname}
    common.update(rec["llamafactory"])
    if rec.get("deepspeed"):
        src, dst = DEEPSPEED_CONFIGS[rec["deepspeed"]]
        shutil.copyfile(RECIPES_DIR / src, out / dst)
        common["deepspeed"] = str(out / dst)
    common["dataset_dir"] = str(data)
    header = (
        f"# LlamaFactory training config written by `prepbench train config` (recipe {rec['name']}: "
        f"{rec.get('description', '')}).\n# Run: llamafactory-cli train THIS_FILE  (or `prepbench train run THIS_FILE`)\n"
    )
    configs = {}
    for kind, datasets in (("mix", [*run_names, DOLLY_DATASET]), ("reference", [DOLLY_DATASET])):
        cfg = dict(common)
        cfg["dataset"] = ",".join(datasets)
        cfg["output_dir"] = str(out / "saves" / kind)
        validate_training_config(cfg, f"{out / (kind + '.yaml')}")
        path = out / f"{kind}.yaml"
        _dump_yaml(path, cfg, header)
        configs[kind] = str(path)
    return configs


# ------------------------------------------------------------------ training runs


def load_training_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check a LlamaFactory training YAML, applying ``overrides`` (argument -> value).

    Raises:
        PrepbenchError: missing file, invalid YAML, unknown/missing argument (see
            :func:`validate_training_config`).
    """
    p = Path(path)
    if not p.is_file():
        raise PrepbenchError(f"{p}: training config not found")
    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise PrepbenchError(f"{p}: invalid YAML") from None
    if not isinstance(cfg, dict):
        raise PrepbenchError(f"{p}: a training config must be a YAML mapping")
    cfg.update(overrides or {})
    validate_training_config(cfg, str(p))
    return cfg


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["learning_rate=1e-3", "bf16=false"]`` -> ``{"learning_rate": 0.001, "bf16": False}``
    (numbers, booleans and ``null`` parsed; anything else kept as a string).

    Raises:
        PrepbenchError: an item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise PrepbenchError(f"--set '{item}': expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = _scalar(v.strip())
    return out


def _scalar(text: str) -> Any:
    """A command-line value as int, float (``1e-3`` too, which YAML 1.1 leaves a string), bool/null, or str."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    value = yaml.safe_load(text) if text else ""
    return value if isinstance(value, (bool, type(None))) else text
