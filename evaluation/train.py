"""Training configs and training runs for the construction track (DataPrep-Bench).

Two jobs:

1. :func:`write_configs` turns prepbench run folders into a LlamaFactory training set-up: the
   runs' accepted samples (``<run>/export/sharegpt.jsonl`` or ``alpaca.jsonl``) plus
   Dolly-15k (Conover et al., 2023; instruction/context/response -> Alpaca with the context
   as ``input``), a ``dataset_info.json`` describing them, one training YAML for the mix and
   one for the Dolly-only reference ("no synthetic training", the PGR reference), and the
   DeepSpeed config when the recipe asks for one. Recipes are data files
   (``evaluation/recipes/*.yaml``). Every YAML key is checked against the argument names
   LlamaFactory accepts (``evaluation/llamafactory_args.json``, read from its ``hparams``
   sources) and ``dataset_info.json`` against its documented schema (``data/README.md``),
   without LlamaFactory installed.
2. :func:`run_training` runs such a YAML: ``llamafactory-cli train CONFIG`` when LlamaFactory is
   installed (GPU machines), else :func:`train_cpu`, a transformers ``Trainer`` on the same
   data files, the same chat template (``evaluation/chat_templates.yaml`` mirrors
   LlamaFactory's template slots) and the same hyper-parameters, with prompt tokens masked
   from the loss as LlamaFactory does (``train_on_prompt: false``).

Heavy libraries (torch, transformers) are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
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
            raise PrepbenchError(f"unknown recipe '{name_or_path}' (choose from {', '.join(list_recipes())}, or give a YAML path)")
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

    Reads ``<run>/export/sharegpt.jsonl`` (preferred) or ``<run>/export/alpaca.jsonl`` and
    checks every row's shape.

    Raises:
        PrepbenchError: no such folder, no export file, an empty export, or a malformed row
            (names file:line and field).
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise PrepbenchError(f"{run}: run folder not found")
    share, alp = run / "export" / "sharegpt.jsonl", run / "export" / "alpaca.jsonl"
    if share.is_file():
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
        fmt = "sharegpt"
    elif alp.is_file():
        rows = []
        for i, row in _read_jsonl(alp):
            for key in ("instruction", "output"):
                if not isinstance(row.get(key), str):
                    raise PrepbenchError(f"{alp}:{i}: Alpaca row lacks field '{key}'")
            rows.append(row)
        fmt = "alpaca"
    else:
        raise PrepbenchError(f"{run}: no export/sharegpt.jsonl or export/alpaca.jsonl (run `prepbench run` to the export step first)")
    if not rows:
        raise PrepbenchError(f"{run}: the export holds no accepted samples")
    return fmt, rows


def _dataset_entry(file_name: str, fmt: str, has_system: bool) -> dict[str, Any]:
    if fmt == "sharegpt":
        entry: dict[str, Any] = {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt", "system_tag": "system"},
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
        runs: prepbench run folders (each with ``export/``).
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
    run_names: list[str] = []
    manifest_runs = []
    for run in runs:
        fmt, rows = read_run_export(run)
        name = f"prepbench_{_safe_name(Path(run).resolve().name)}"
        k = 2
        while name in info:
            name = f"{name}_{k}"
            k += 1
        fname = f"{name}.{fmt}.jsonl"
        n = _write_jsonl(data / fname, rows)
        info[name] = _dataset_entry(fname, fmt, has_system=any(r.get("system") for r in rows))
        run_names.append(name)
        manifest_runs.append({"run": str(Path(run).resolve()), "dataset": name, "format": fmt, "rows": n})
    dolly_path = Path(dolly) if dolly else datasets_dir() / DOLLY_FILE
    dolly_rows = dolly_to_alpaca(dolly_path, dolly_limit)
    dolly_fname = f"{DOLLY_DATASET}.alpaca.jsonl"
    _write_jsonl(data / dolly_fname, dolly_rows)
    info[DOLLY_DATASET] = _dataset_entry(dolly_fname, "alpaca", has_system=False)
    validate_dataset_info(info, str(data / "dataset_info.json"))
    (data / "dataset_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

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


def load_conversations(cfg: dict[str, Any], where: str = "config") -> list[list[dict[str, str]]]:
    """The config's training data as chat messages ``[{role, content}]``, one list per sample.

    Reads ``dataset_dir/dataset_info.json`` and each dataset in ``dataset`` (comma-separated)
    as LlamaFactory would: Alpaca entries join ``prompt`` and ``query`` with a newline; ShareGPT
    entries map the tags to user/assistant/system. ``max_samples`` caps each dataset.

    Raises:
        PrepbenchError: missing ``dataset_info.json``, a dataset not in it, an unsupported entry
            (hub datasets), a missing data file, or a malformed row (file:line).
    """
    ddir = Path(cfg["dataset_dir"])
    info_path = ddir / "dataset_info.json"
    if not info_path.is_file():
        raise PrepbenchError(f"{where}: field 'dataset_dir': {info_path} not found")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrepbenchError(f"{info_path}:{e.lineno}: not valid JSON ({e.msg})") from None
    validate_dataset_info(info, str(info_path))
    cap = cfg.get("max_samples")
    convs: list[list[dict[str, str]]] = []
    for name in [d.strip() for d in str(cfg["dataset"]).split(",") if d.strip()]:
        if name not in info:
            raise PrepbenchError(f"{where}: field 'dataset': '{name}' is not in {info_path}")
        entry = info[name]
        if not entry.get("file_name"):
            raise PrepbenchError(f"{info_path}: dataset '{name}': the CPU trainer reads local files only (field 'file_name')")
        fpath = Path(entry["file_name"])
        fpath = fpath if fpath.is_absolute() else ddir / fpath
        if not fpath.is_file():
            raise PrepbenchError(f"{info_path}: dataset '{name}': file '{fpath}' not found")
        cols = entry.get("columns") or {}
        taken = 0
        for i, row in _read_jsonl(fpath):
            if cap is not None and taken >= int(cap):
                break
            if entry.get("formatting", "alpaca") == "sharegpt":
                tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                        "system_tag": "system", **(entry.get("tags") or {})}
                roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["system_tag"]: "system"}
                msgs = []
                for m in row.get(cols.get("messages", "conversations")) or []:
                    role = roles.get(m.get(tags["role_tag"]))
                    if role is None:
                        raise PrepbenchError(f"{fpath}:{i}: unknown role '{m.get(tags['role_tag'])}'")
                    msgs.append({"role": role, "content": str(m.get(tags["content_tag"], ""))})
            else:
                prompt = row.get(cols.get("prompt", "instruction")) or ""
                query = row.get(cols.get("query", "input")) or ""
                response = row.get(cols.get("response", "output"))
                if response is None:
                    raise PrepbenchError(f"{fpath}:{i}: row lacks field '{cols.get('response', 'output')}'")
                user = f"{prompt}\n{query}" if query else prompt
                msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": str(response)}]
            sys_col = cols.get("system")
            if sys_col and row.get(sys_col) and not (msgs and msgs[0]["role"] == "system"):
                msgs.insert(0, {"role": "system", "content": row[sys_col]})
            if not msgs or msgs[-1]["role"] != "assistant":
                raise PrepbenchError(f"{fpath}:{i}: a sample must end with an assistant message")
            convs.append(msgs)
            taken += 1
    if not convs:
        raise PrepbenchError(f"{where}: the datasets hold no samples")
    return convs


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """Token budget of one (prompt, answer) turn under ``cutoff_len``, as LlamaFactory splits it
    (``infer_seqlen`` in ``src/llamafactory/data/processor/processor_utils.py``): a short answer
    (< half the budget) is kept whole and the prompt cut; else a short prompt is kept and the
    answer cut; else both are cut in proportion to their lengths.

    Returns:
        ``(new_source_len, new_target_len)`` in tokens, summing to at most ``cutoff_len``.
    """
    if target_len * 2 < cutoff_len:
        max_target = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target = cutoff_len - source_len
    else:
        max_target = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target = min(max_target, target_len)
    new_source = min(max(cutoff_len - new_target, 0), source_len)
    return new_source, new_target


def encode_conversation(tokenizer, messages: list[dict[str, str]], cutoff_len: int, train_on_prompt: bool = False) -> dict[str, list[int]]:
    """Tokenise one conversation with the tokenizer's chat template, LlamaFactory style.

    Each assistant turn's tokens are learned; everything else (system, user turns and the
    template's assistant header) gets label -100 unless ``train_on_prompt``. The text is cut
    into segments at the template's own boundaries (the rendering of ``messages[:k]`` with a
    generation prompt), so the masking follows the chat template exactly. Over ``cutoff_len``,
    each turn is cut by :func:`infer_seqlen`, so a long prompt never hides its answer.

    Returns:
        ``{"input_ids": [...], "attention_mask": [...], "labels": [...]}``, at most ``cutoff_len`` long.

    Raises:
        PrepbenchError: the chat template does not render the conversation as a prefix-stable string.
    """
    turns: list[tuple[str, str]] = []  # (prompt text, answer text) per assistant message
    done = ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:k], add_generation_prompt=True, tokenize=False)
        upto = tokenizer.apply_chat_template(messages[: k + 1], tokenize=False)
        if not prompt.startswith(done) or not upto.startswith(prompt):
            raise PrepbenchError("the chat template does not render conversations prefix-stably; cannot mask prompts")
        turns.append((prompt[len(done):], upto[len(prompt):]))
        done = upto
    ids: list[int] = []
    labels: list[int] = []
    total = 0
    for prompt_text, answer_text in turns:
        if total >= cutoff_len:
            break
        src = tokenizer(prompt_text, add_special_tokens=False)["input_ids"] if prompt_text else []
        tgt = tokenizer(answer_text, add_special_tokens=False)["input_ids"] if answer_text else []
        s_len, t_len = infer_seqlen(len(src), len(tgt), cutoff_len - total)
        src, tgt = src[:s_len], tgt[:t_len]
        total += s_len + t_len
        ids.extend(src + tgt)
        labels.extend((src if train_on_prompt else [-100] * s_len) + tgt)
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def _setup_tokenizer(tokenizer, template: str) -> str:
    spec = chat_templates().get(template)
    if spec is not None:
        tokenizer.chat_template = spec["chat_template"]
        return f"shipped:{template}"
    if getattr(tokenizer, "chat_template", None):
        return "tokenizer"
    raise PrepbenchError(
        f"template '{template}' is not in {TEMPLATES_FILE.name} and the tokenizer has no chat template; "
        f"use one of {', '.join(chat_templates())}"
    )


def train_cpu(
    config: str | os.PathLike,
    max_steps: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train the config's model on CPU with transformers' ``Trainer`` (LlamaFactory stand-in).

    Honours ``model_name_or_path``, ``dataset``/``dataset_dir``/``max_samples``, ``template``,
    ``cutoff_len``, ``train_on_prompt``, ``per_device_train_batch_size``,
    ``gradient_accumulation_steps``, ``learning_rate``, ``num_train_epochs``, ``max_steps``,
    ``lr_scheduler_type``, ``warmup_ratio``/``warmup_steps``, ``weight_decay``,
    ``max_grad_norm``, ``logging_steps``, ``seed`` and ``output_dir``; ``bf16``/``fp16``,
    ``deepspeed`` and ``enable_liger_kernel`` are GPU features and are ignored here (float32).
    Only ``finetuning_type: full`` and ``stage: sft`` are supported on this path.

    Args:
        config: LlamaFactory training YAML.
        max_steps: override the number of optimiser steps (smoke runs).
        overrides: other argument overrides (e.g. ``{"learning_rate": 1e-3}``).

    Returns:
        Summary dict: ``output_dir``, ``steps``, ``losses`` (per logging step), ``train_loss``,
        ``samples``, ``template``; also written to ``<output_dir>/prepbench_train.json``. The
        model and tokenizer (with the chat template set) are saved to ``output_dir``.

    Raises:
        PrepbenchError: bad config or data, unsupported stage/finetuning type, unloadable model.
    """
    cfg = load_training_config(config, overrides)
    if cfg["stage"] != "sft" or cfg["finetuning_type"] != "full":
        raise PrepbenchError(
            f"{config}: the CPU trainer supports stage 'sft' with finetuning_type 'full' only "
            f"(got {cfg['stage']}/{cfg['finetuning_type']}); install LlamaFactory for the rest"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model_path = str(cfg["model_name_or_path"])
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise PrepbenchError(f"{config}: field 'model_name_or_path': cannot load '{model_path}' ({str(e).splitlines()[0]})") from None
    used_template = _setup_tokenizer(tokenizer, str(cfg["template"]))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    convs = load_conversations(cfg, str(config))
    cutoff = int(cfg.get("cutoff_len", 2048))
    features = [encode_conversation(tokenizer, c, cutoff, bool(cfg.get("train_on_prompt", False))) for c in convs]
    features = [f for f in features if any(x != -100 for x in f["labels"])]
    if not features:
        raise PrepbenchError(f"{config}: every sample is cut off before its answer (raise cutoff_len)")

    steps = max_steps if max_steps is not None else int(cfg.get("max_steps", -1) or -1)
    warmup = cfg.get("warmup_ratio", cfg.get("warmup_steps", 0)) or 0
    out_dir = Path(cfg["output_dir"])
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=int(cfg.get("per_device_train_batch_size", 8)),
        gradient_accumulation_steps=int(cfg.get("gradient_accumulation_steps", 1)),
        learning_rate=float(cfg.get("learning_rate", 5e-5)),
        num_train_epochs=float(cfg.get("num_train_epochs", 3.0)),
        max_steps=steps,
        lr_scheduler_type=str(cfg.get("lr_scheduler_type", "linear")),
        warmup_steps=float(warmup),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
        max_grad_norm=float(cfg.get("max_grad_norm", 1.0)),
        logging_steps=int(cfg.get("logging_steps", 10)),
        seed=int(cfg.get("seed", 42)),
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    trainer = Trainer(model=model, args=args, train_dataset=features, data_collator=collator)
    result = trainer.train()
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "backend": "cpu-transformers",
        "config": str(Path(config).resolve()),
        "output_dir": str(out_dir),
        "steps": int(trainer.state.global_step),
        "losses": losses,
        "train_loss": float(result.training_loss),
        "samples": len(features),
        "template": used_template,
        "ignored_gpu_options": [k for k in ("bf16", "fp16", "deepspeed", "enable_liger_kernel") if cfg.get(k)],
    }
    (out_dir / "prepbench_train.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def run_training(
    config: str | os.PathLike,
    max_steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    backend: str = "auto",
) -> dict[str, Any]:
    """Run a LlamaFactory training YAML: ``llamafactory-cli train`` if installed, else :func:`train_cpu`.

    Args:
        config: the YAML written by :func:`write_configs` (or any LlamaFactory SFT YAML).
        max_steps: override ``max_steps`` (smoke runs).
        overrides: more ``argument -> value`` overrides, passed to LlamaFactory as ``key=value``.
        backend: ``auto`` (LlamaFactory when on PATH), ``llamafactory`` or ``cpu``.

    Returns:
        ``{"backend": "llamafactory", "returncode": 0, ...}`` or the :func:`train_cpu` summary.

    Raises:
        PrepbenchError: bad config; ``backend='llamafactory'`` without ``llamafactory-cli``;
            LlamaFactory exiting non-zero.
    """
    overrides = dict(overrides or {})
    load_training_config(config, overrides)  # fail fast on a bad config, either backend
    cli = shutil.which("llamafactory-cli")
    if backend not in ("auto", "llamafactory", "cpu"):
        raise PrepbenchError(f"unknown training backend '{backend}' (auto, llamafactory, cpu)")
    if backend == "llamafactory" and cli is None:
        raise PrepbenchError("llamafactory-cli is not on PATH (install LlamaFactory on a GPU machine, or use --backend cpu)")
    if cli is not None and backend != "cpu":
        if max_steps is not None:
            overrides["max_steps"] = max_steps
        cmd = [cli, "train", str(config), *[f"{k}={v}" for k, v in overrides.items()]]
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            raise PrepbenchError(f"llamafactory-cli train {config} exited with code {rc}")
        return {"backend": "llamafactory", "returncode": rc, "command": cmd}
    return train_cpu(config, max_steps=max_steps, overrides=overrides)
