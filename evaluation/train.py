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

Modules: :mod:`.train_config` (recipes, schema checks, :func:`write_configs`),
:mod:`.train_cpu` (:func:`train_cpu` and its tokenisation); this module re-exports both and
holds :func:`run_training`.

Heavy libraries (torch, transformers) are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from prepbench.tools.errors import PrepbenchError

from .train_config import (  # noqa: F401  (re-exported)
    ARGS_FILE,
    DEEPSPEED_CONFIGS,
    DOLLY_DATASET,
    DOLLY_FILE,
    HERE,
    RECIPE_KEYS,
    RECIPES_DIR,
    REQUIRED_KEYS,
    TEMPLATES_FILE,
    chat_templates,
    datasets_dir,
    dolly_to_alpaca,
    list_recipes,
    llamafactory_arg_names,
    llamafactory_schema,
    load_recipe,
    load_training_config,
    parse_overrides,
    read_run_export,
    template_for,
    validate_dataset_info,
    validate_training_config,
    write_configs,
)
from .train_cpu import encode_conversation, infer_seqlen, load_conversations, train_cpu  # noqa: F401  (re-exported)


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
