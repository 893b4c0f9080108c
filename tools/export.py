"""Export accepted samples as SFT data: ShareGPT, Alpaca, OpenAI-chat JSONL, a Hugging Face
``datasets`` folder with Parquet (``hf``), a LlamaFactory ``dataset_info.json`` entry that
points at them, a dataset card (``README.md``, :mod:`prepbench.tools.card`) and
``manifest.json`` (the SHA-256 of every file, :mod:`prepbench.tools.export_set`).

Each sample is rendered once to an (instruction, output) pair by its skill's
``render/<type>.md`` template, in the skills' template sandbox, and every format's line is built
from that pair (:mod:`prepbench.tools.export_rows`); a large export renders in worker processes,
block by block in order (:mod:`prepbench.tools.export_pool`). The lines are written a block at a
time by a writer thread that hashes them on the way (:mod:`prepbench.tools.hashed_files`), so the
manifest needs no second read of the files.

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
from contextlib import closing
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .card import render_card
from .errors import PrepbenchError
from .export_pool import BlockSource, Rendered, rendered_blocks
from .export_set import replace_set
from .hashed_files import BlockWriter, HashedFile

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


def _open_lines(path: Path) -> HashedFile:
    """A JSONL file of the export, opened for writing and hashed as it is written."""
    return HashedFile(path)


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
    samples: Iterable[dict] | BlockSource,
    renders: dict[str, str],
    out_dir: str | Path,
    formats: Sequence[str] = ("sharegpt", "alpaca", "openai", "samples"),
    name: str = "prepbench",
    system: str | None = None,
    provenance: dict[str, Any] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write accepted samples in the requested formats plus ``dataset_info.json``, the dataset
    card and the manifest, as one set replaced at once.

    Args:
        samples: accepted samples in export order: dicts with ``sample_id``, ``sample_type``,
            ``chunk_id`` and fields, or the ledger's stored rows
            (:meth:`~prepbench.tools.ledger.RunFolder.accepted_sample_rows`), decoded where they are
            rendered, or a :class:`~prepbench.tools.export_pool.BlockSource` whose blocks the worker
            processes read themselves (:meth:`~prepbench.tools.ledger.RunFolder.accepted_sample_blocks`).
        renders: sample type -> render template source (``Skill.renders``).
        out_dir: export folder (created).
        formats: any of :data:`FORMATS`.
        name: dataset name prefix in ``dataset_info.json``.
        system: optional system prompt put on every row.
        provenance: what the card says of the run (:func:`prepbench.tools.card.provenance`);
            None: a card with the files only.
        workers: render in this many worker processes (0: here); None: decided by the size of
            the export and the machine (:func:`prepbench.tools.export_pool.rendered_blocks`).
            The files are the same bytes either way.

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
    info = dataset_info(name, [f for f in formats if f != "samples"], system=bool(system))
    count = 0

    def write(tmp: Path) -> dict[str, tuple[str, int]]:
        nonlocal count
        jsonl = [f for f in formats if f != "hf"]
        hf = "hf" in formats
        count, digests, hf_rows = _write_lines(tmp, jsonl, rendered_blocks(samples, renders, jsonl, system, hf, workers), hf)
        rows = {FILE_NAMES[fmt]: count for fmt in jsonl}
        if hf_rows is not None:
            rows.update(_write_hf(tmp, hf_rows))
        _write_text(tmp / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        _write_text(tmp / CARD, render_card(provenance or {}, rows, _card_data_file(formats)))
        return digests

    replace_set(out, write, [*FILE_NAMES.values(), "dataset_info.json", PARQUET, CARD])
    files = {fmt: str(out / FILE_NAMES[fmt]) for fmt in formats}
    return {"files": files, "count": count, "dataset_info": str(out / "dataset_info.json")}


def _write_lines(
    folder: Path, jsonl: Sequence[str], blocks: Iterator[Rendered], hf: bool
) -> tuple[int, dict[str, tuple[str, int]], list[dict] | None]:
    """Write the rendered blocks to each JSONL format's file as they come, by the writer thread
    that hashes them (a run of millions of samples is never held in memory; only hf's rows are).

    Returns:
        ``(samples, {file name: (sha256, bytes)}, the ShareGPT rows for hf or None)``.
    """
    count, hf_rows = 0, ([] if hf else None)
    files: dict[str, HashedFile] = {}
    digests: dict[str, tuple[str, int]] = {}
    try:
        for fmt in jsonl:
            files[fmt] = _open_lines(folder / FILE_NAMES[fmt])
        with closing(blocks), BlockWriter() as writer:
            for n, lines, rows in blocks:
                for fmt, data in lines.items():
                    writer.write(files[fmt], data)
                if hf_rows is not None:
                    hf_rows.extend(rows)
                count += n
        for fmt in jsonl:
            f = files.pop(fmt)
            digests[FILE_NAMES[fmt]] = (f.close(), f.size)
    finally:
        for f in files.values():
            f.discard()
    return count, digests, hf_rows


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
