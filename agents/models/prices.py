"""Model prices and the cost of a call.

The default table is ``prices.yaml`` next to this module (USD per ``per_tokens`` tokens,
input and output priced separately); a user file given with ``--prices FILE`` is merged
over it. A call's cost is ``input_tokens × input_price / per_tokens + output_tokens ×
output_price / per_tokens``, with the token counts the server reports in its usage fields.
A call sent through a provider's batch API (``--batch``) costs ``batch_factor`` times that
(``batch_factor`` in the YAML: 0.5 in the shipped table, the discount both OpenAI and Anthropic give).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prepbench.tools.errors import PrepbenchError

DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")


@dataclass
class PriceTable:
    """Per-model prices.

    Attributes:
        models: model name or glob -> ``{"input": float, "output": float}`` (USD per ``per_tokens``).
        per_tokens: the token count prices refer to (1,000,000).
        batch_factor: the share of the price a batch-API call costs (0 to 1; None: the file sets
            none, and a batch call costs the full price).
    """

    models: dict[str, dict[str, float]] = field(default_factory=dict)
    per_tokens: int = 1_000_000
    batch_factor: float | None = None

    @classmethod
    def load(cls, user_file: str | Path | None = None) -> "PriceTable":
        """The shipped table, with ``user_file`` (YAML, same layout) merged over it.

        Raises:
            PrepbenchError: the user file is missing, not YAML, or has a bad entry (names file and model).
        """
        table = cls._read(DEFAULT_PRICES)
        if user_file is not None:
            user = cls._read(Path(user_file))
            if user.per_tokens != table.per_tokens:
                # rescale the user's prices to the shipped unit
                factor = table.per_tokens / user.per_tokens
                user.models = {k: {"input": v["input"] * factor, "output": v["output"] * factor} for k, v in user.models.items()}
            table.models = {**user.models, **{k: v for k, v in table.models.items() if k not in user.models}}
            if user.batch_factor is not None:
                table.batch_factor = user.batch_factor
        return table

    @classmethod
    def _read(cls, path: Path) -> "PriceTable":
        if not path.is_file():
            raise PrepbenchError(f"{path}: price file not found")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}:" if mark is not None else ""
            raise PrepbenchError(f"{path}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("models", {}), dict):
            raise PrepbenchError(f"{path}: field 'models' must be a mapping of model name to {{input, output}}")
        per = raw.get("per_tokens", 1_000_000)
        if not isinstance(per, int) or per <= 0:
            raise PrepbenchError(f"{path}: field 'per_tokens' must be a positive integer")
        factor = raw.get("batch_factor")
        if factor is not None and (not isinstance(factor, (int, float)) or isinstance(factor, bool) or not 0 <= factor <= 1):
            raise PrepbenchError(f"{path}: field 'batch_factor' must be a number from 0 to 1 (the batch price's share)")
        models: dict[str, dict[str, float]] = {}
        for name, p in (raw.get("models") or {}).items():
            if not isinstance(p, dict) or not all(
                isinstance(p.get(k), (int, float)) and p.get(k) >= 0 for k in ("input", "output")
            ):
                raise PrepbenchError(f"{path}: model '{name}': needs non-negative numbers 'input' and 'output'")
            models[str(name)] = {"input": float(p["input"]), "output": float(p["output"])}
        return cls(models=models, per_tokens=per, batch_factor=None if factor is None else float(factor))

    def price(self, model: str) -> dict[str, float] | None:
        """The price entry of ``model`` (exact name first, then globs in file order), or None."""
        if model in self.models:
            return self.models[model]
        for pattern, p in self.models.items():
            if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(model, pattern):
                return p
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int, batch: bool = False) -> float:
        """USD cost of one call; 0.0 for a model without a price (local servers); ``batch``: a
        call of a provider batch job, at ``batch_factor`` of the price."""
        p = self.price(model)
        if p is None:
            return 0.0
        usd = (input_tokens * p["input"] + output_tokens * p["output"]) / self.per_tokens
        return usd * (self.batch_factor if self.batch_factor is not None else 1.0) if batch else usd

    def to_dict(self) -> dict[str, Any]:
        return {"per_tokens": self.per_tokens, "batch_factor": self.batch_factor, "models": self.models}
