"""Export accepted samples as SFT data: ShareGPT, Alpaca, OpenAI-chat JSONL, a Hugging Face
``datasets`` folder with Parquet (``hf``), a LlamaFactory ``dataset_info.json`` entry that
points at them, a dataset card (``README.md``, :mod:`prepbench.tools.card`) and
``manifest.json`` (the SHA-256 of every file, :mod:`prepbench.tools.export_set`).

Each sample is rendered to an (instruction, output) pair by its skill's
``render/<type>.md`` template (e.g. ``case_application``: instruction = case + question,
output = numbered analysis steps + answer), in the skills' template sandbox.

The export set is replaced at once (:mod:`prepbench.tools.export_set`): every file is written
into a fresh sibling folder ``<export>.tmp-<pid>``, which then takes the export folder's place
in one atomic rename; a reader, or a kill at any moment, sees the previous complete set or the
new one, never a mix. Partials a killed export left are removed by the next export.

LlamaFactory's dataset format (``data/README.md`` of LLaMA-Factory): an Alpaca entry maps
``columns`` prompt/query/response; a ShareGPT entry sets ``formatting: sharegpt`` with
``columns.messages`` and the ``tags`` role_tag/content_tag/user_tag/assistant_tag.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

import jinja2

from .card import render_card
from .errors import PrepbenchError
from .export_set import replace_set
from .skills.templates import render_blocks

FORMATS = ("sharegpt", "alpaca", "openai", "samples", "hf")
FILE_NAMES = {
    "sharegpt": "sharegpt.jsonl",
    "alpaca": "alpaca.jsonl",
    "openai": "openai.jsonl",
    "samples": "samples.jsonl",
    "hf": "hf",  # a datasets.save_to_disk folder of the ShareGPT rows, beside them in Parquet
}
PARQUET = "sharegpt.parquet"
CARD = "README.md"


def render_pair(sample: dict, template: str | None) -> tuple[str, str]:
    """Render a sample to ``(instruction, output)`` with its type's render template.

    Args:
        sample: the sample's fields.
        template: the source of the skill's ``render/<type>.md`` (blocks ``instruction``
            and ``output``, rendered in the sandbox), or None for the default rendering:
            instruction = ``case`` + ``question`` (or ``question``/``instruction``),
            output = steps (if any) + ``answer``.

    Raises:
        PrepbenchError: the template refers to a field the sample lacks, or breaks the sandbox.
    """
    if template:
        try:
            instr, out = render_blocks(template, sample)
        except jinja2.TemplateError as e:
            raise PrepbenchError(f"render/{sample.get('sample_type')}.md: {e} (sample {sample.get('sample_id', '')})") from None
        return _tidy(instr), _tidy(out)
    q = sample.get("question") or sample.get("instruction") or ""
    if sample.get("case"):
        q = f"{sample['case']}\n\n{q}"
    steps = sample.get("reasoning_steps") or sample.get("analysis_steps") or sample.get("steps") or []
    ans = str(sample.get("answer") or sample.get("output") or "")
    out = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    out = f"{out}\n\nAnswer: {ans}" if steps else ans
    return _tidy(q), _tidy(out)


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


#: One JSON encoder for every row (``json.dumps`` with options builds one per call); the same bytes.
_ROW = json.JSONEncoder(ensure_ascii=False).encode


def _open_lines(path: Path) -> IO[str]:
    """A JSONL file of the export, opened for writing (large buffer: millions of rows)."""
    return open(path, "w", encoding="utf-8", buffering=1 << 20)


def _close_lines(f: IO[str]) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def dataset_info(prefix: str, formats: Sequence[str], directory: str = ".", system: bool = False) -> dict[str, Any]:
    """LlamaFactory ``dataset_info.json`` entries for the exported files.

    Args:
        prefix: dataset name prefix (e.g. ``prepbench_fin``); entries are ``<prefix>_<format>``.
        formats: exported formats (``sharegpt``, ``alpaca``, ``openai``).
        directory: the folder of the files relative to LlamaFactory's ``dataset_dir``.
        system: the rows carry a ``system`` column (only then is it mapped: LlamaFactory reads
            every mapped column, so an unmapped-but-absent column must not be declared).
    """
    sys_col = {"system": "system"} if system else {}

    def fn(fmt: str) -> str:
        return FILE_NAMES[fmt] if directory in ("", ".") else f"{directory.rstrip('/')}/{FILE_NAMES[fmt]}"

    info: dict[str, Any] = {}
    if "alpaca" in formats:
        info[f"{prefix}_alpaca"] = {
            "file_name": fn("alpaca"),
            "columns": {"prompt": "instruction", "query": "input", "response": "output", **sys_col},
        }
    if "sharegpt" in formats:
        info[f"{prefix}_sharegpt"] = {
            "file_name": fn("sharegpt"),
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", **sys_col},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
        }
    if "openai" in formats:
        info[f"{prefix}_openai"] = {
            "file_name": fn("openai"),
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
                "system_tag": "system",
            },
        }
    return info


def export_samples(
    samples: Iterable[dict],
    renders: dict[str, str],
    out_dir: str | Path,
    formats: Sequence[str] = ("sharegpt", "alpaca", "openai", "samples"),
    name: str = "prepbench",
    system: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write accepted samples in the requested formats plus ``dataset_info.json``, the dataset
    card and the manifest, as one set replaced at once.

    Args:
        samples: accepted samples (dicts with ``sample_id``, ``sample_type``, ``chunk_id`` and fields).
        renders: sample type -> render template source (``Skill.renders``).
        out_dir: export folder (created).
        formats: any of :data:`FORMATS`.
        name: dataset name prefix in ``dataset_info.json``.
        system: optional system prompt put on every row.
        provenance: what the card says of the run (:func:`prepbench.tools.card.provenance`);
            None: a card with the files only.

    Returns:
        ``{"files": {format: path}, "count": n, "dataset_info": path}``.

    Raises:
        PrepbenchError: unknown format, a render template error, or ``hf`` without the datasets package.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise PrepbenchError(f"unknown export format '{bad[0]}' (choose from {', '.join(FORMATS)})")
    if "hf" in formats:
        _require_datasets()
    out = Path(out_dir)
    builders = _builders(system)
    lines_of = _line_builders(system)
    info = dataset_info(name, [f for f in formats if f != "samples"], system=bool(system))
    count = 0

    def write(tmp: Path) -> None:
        # one pass: each sample is rendered once and written to every format's file as it comes
        # (a run of millions of samples is never held in memory; only hf needs its rows at once)
        nonlocal count
        jsonl = [f for f in formats if f != "hf"]
        hf_rows: list[dict] | None = [] if "hf" in formats else None
        files: dict[str, IO[str]] = {}
        try:
            for fmt in jsonl:
                files[fmt] = _open_lines(tmp / FILE_NAMES[fmt])
            for s in samples:
                instr, resp = render_pair(s, renders.get(s.get("sample_type")))
                lines = lines_of(s, instr, resp)
                for fmt, f in files.items():
                    f.write(lines[fmt] + "\n")
                if hf_rows is not None:
                    hf_rows.append(builders["sharegpt"](s, instr, resp))
                count += 1
            for fmt in jsonl:
                _close_lines(files.pop(fmt))
        finally:
            for f in files.values():
                f.close()
        rows = {FILE_NAMES[fmt]: count for fmt in jsonl}
        if hf_rows is not None:
            rows.update(_write_hf(tmp, hf_rows))
        _write_text(tmp / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        _write_text(tmp / CARD, render_card(provenance or {}, rows, _card_data_file(formats)))

    replace_set(out, write, [*FILE_NAMES.values(), "dataset_info.json", PARQUET, CARD])
    files = {fmt: str(out / FILE_NAMES[fmt]) for fmt in formats}
    return {"files": files, "count": count, "dataset_info": str(out / "dataset_info.json")}


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _require_datasets() -> None:
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise PrepbenchError("--format hf needs the datasets package: pip install 'prepbench[train]' (or datasets)") from None


def _write_hf(folder: Path, rows: list[dict]) -> dict[str, int]:
    """The ShareGPT rows as a ``datasets`` folder (``datasets.load_from_disk``) and as Parquet."""
    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the export prints its own summary
    try:
        ds = datasets.Dataset.from_list(rows)
        ds.save_to_disk(str(folder / FILE_NAMES["hf"]))
        ds.to_parquet(str(folder / PARQUET))
    finally:
        if shown:
            datasets.enable_progress_bars()
    return {FILE_NAMES["hf"] + "/": len(rows), PARQUET: len(rows)}


def _card_data_file(formats: Sequence[str]) -> str:
    """The file the card's ``configs`` points the Hub at: Parquet, else the first JSONL format."""
    if "hf" in formats:
        return PARQUET
    return FILE_NAMES[next((f for f in ("sharegpt", "alpaca", "openai", "samples") if f in formats), "sharegpt")]


def _builders(system: str | None) -> dict[str, Any]:
    """Row builder per format: ``(sample, instruction, output) -> row``."""
    sys_row = {"system": system} if system else {}
    return {
        "sharegpt": lambda s, i, r: {"conversations": [{"from": "human", "value": i}, {"from": "gpt", "value": r}], **sys_row},
        "alpaca": lambda s, i, r: {"instruction": i, "input": "", "output": r, **sys_row},
        "openai": lambda s, i, r: {
            "messages": ([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": i}, {"role": "assistant", "content": r}]
        },
        "samples": lambda s, i, r: {**s, "instruction": i, "output": r},
    }


def _line_builders(system: str | None) -> dict[str, Any]:
    """JSONL line per format: ``(sample, instruction, output) -> str``, the bytes of ``_ROW`` of
    :func:`_builders`' row. The chat formats hold the same two strings, so each is encoded once and
    the rows are put together around them (a run of millions of samples spends its export there)."""
    samples_row = _builders(system)["samples"]
    js = _ROW(system) if system else ""
    tail = f', "system": {js}}}' if system else "}"
    first = f'{{"role": "system", "content": {js}}}, ' if system else ""

    def chat(s: dict, i: str, r: str) -> dict[str, str]:
        ji, jr = _ROW(i), _ROW(r)
        return {
            "sharegpt": f'{{"conversations": [{{"from": "human", "value": {ji}}}, {{"from": "gpt", "value": {jr}}}]{tail}',
            "alpaca": f'{{"instruction": {ji}, "input": "", "output": {jr}{tail}',
            "openai": f'{{"messages": [{first}{{"role": "user", "content": {ji}}}, {{"role": "assistant", "content": {jr}}}]}}',
            "samples": _ROW(samples_row(s, i, r)),
        }

    return chat
