"""DAS encoding as Ray Data batches (issue 15): the texts missing from the embedding cache are encoded
by MiniLM actors of a Ray Data ``map_batches``; the vectors and the DAS equal the local encoder's,
they land in the same cache under the same encoder id, and a second run encodes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prepbench.evaluation.das import das_score
from prepbench.evaluation.readers import read_samples
from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder
from prepbench.tools.executors import ExecutorOptions

from cli_helpers import SHARED

ray = pytest.importorskip("ray")

GSM8K = SHARED / "datasets" / "gsm8k" / "train.jsonl"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs for the module."""
    ray.init(num_cpus=2, namespace="prepbench", include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local():
    return make_encoder("minilm")


@pytest.fixture(scope="module")
def texts() -> tuple[list[str], list[str]]:
    gsm = [s.text for s in read_samples(GSM8K)]
    return gsm[:20], gsm[100:140]  # proxy, candidate


def test_ray_batches_give_the_local_vectors_and_das_and_fill_the_same_cache(cluster, local, texts, tmp_path):
    from prepbench.tools.executors.ray_embed import ray_encoder

    proxy, cand = texts
    here = das_score(cand, proxy, local, EmbeddingCache(tmp_path / "local.sqlite"), progress=False)
    cache = EmbeddingCache(tmp_path / "ray.sqlite")
    embed_texts(proxy, local, cache, progress=False)  # the proxy is cached already: only the candidate goes to Ray
    enc = ray_encoder(local, "minilm", ExecutorOptions("ray", workers=2))
    assert enc.encoder_id == local.encoder_id and enc.workers == 2
    remote = das_score(cand, proxy, enc, cache, progress=False)
    assert enc.calls == 1 and enc.encoded == len(cand)  # one Ray job, the missing texts only
    assert remote["embedding"]["candidate"]["encoded"] == len(cand) and remote["embedding"]["proxy"]["encoded"] == 0
    assert remote["das"] == pytest.approx(here["das"], abs=1e-5)
    assert remote["mmd2"] == pytest.approx(here["mmd2"], abs=1e-6)
    assert cache.count(local.encoder_id) == len(proxy) + len(cand)
    calls = local.calls
    cached, info = embed_texts(cand, local, cache, progress=False)  # the vectors the Ray job wrote
    assert info["encoded"] == 0 and local.calls == calls
    assert np.allclose(cached, local.encode(cand), atol=1e-5)
    again = das_score(cand, proxy, enc, cache, progress=False)  # everything is cached now: no Ray job
    assert enc.calls == 1 and again["embedding"]["candidate"]["encoded"] == 0
    assert again["das"] == remote["das"]


def test_cli_score_das_with_the_ray_executor(cluster, local, tmp_path):
    from prepbench.tools.cli import main

    rows = GSM8K.read_text(encoding="utf-8").split("\n")
    (tmp_path / "proxy.jsonl").write_text("\n".join(rows[:12]) + "\n")
    (tmp_path / "cand.jsonl").write_text("\n".join(rows[100:112]) + "\n")
    proxy = [s.text for s in read_samples(tmp_path / "proxy.jsonl")]
    embed_texts(proxy, local, EmbeddingCache(tmp_path / "c.sqlite"), progress=False)  # one Ray job: the candidate
    args = [
        "score",
        "das",
        str(tmp_path / "cand.jsonl"),
        "--proxy",
        str(tmp_path / "proxy.jsonl"),
        "--cache",
        str(tmp_path / "c.sqlite"),
    ]
    main([*args, "--executor", "ray", "--workers", "2", "-o", str(tmp_path / "ray.json")])
    main([*args, "-o", str(tmp_path / "cached.json")])  # the local encoder reads what the Ray job cached
    remote = json.loads((tmp_path / "ray.json").read_text())["results"][0]
    cached = json.loads((tmp_path / "cached.json").read_text())["results"][0]
    assert remote["embedding"]["candidate"]["encoded"] == 12 and cached["embedding"]["candidate"]["encoded"] == 0
    assert cached["embedding"]["proxy"]["encoded"] == 0
    assert cached["das"] == remote["das"] and remote["n_candidate"] == 12


def test_workers_without_the_ray_executor_is_a_one_line_error(tmp_path, capsys):
    from prepbench.tools.cli import main

    (tmp_path / "d.jsonl").write_text(json.dumps({"instruction": "What is 2 + 2?", "output": "4"}) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["score", "das", str(tmp_path / "d.jsonl"), "--proxy", str(tmp_path / "d.jsonl"), "--workers", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --ray-address and --workers need --executor ray"], err
