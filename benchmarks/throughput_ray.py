"""Benchmark ``--executor ray`` against a fixed-latency model server: Ray workers plus the driver
beside the bare openai SDK, at the same total concurrency.

The set-up of ``benchmarks/throughput.py`` (whose server and bare-SDK row this script reuses):
the test server of ``tests/llm_server.py`` in its own process, answering every request after a
fixed latency (default 100 ms), timing each request on its own clock. Three rows, at the same
total concurrency C (default 32):

- ``ray W workers``: the skill agent (``openai:bench-model``) with ``--executor ray --workers W``
  on a local Ray instance (``num_cpus=W``): the driver runs ``2 C`` lanes and commits; each worker
  generates with its own client and ``C / W`` requests in flight;
- ``local``: the same run with the local executor (one process, C in flight);
- ``bare SDK``: the openai SDK alone sending triage-sized requests at C (no LangChain, no agent).

Achieved requests/s come from the server's clock (first arrival to last reply), so start-up,
ingest and export are outside the window. Target (issue 15): the Ray row at least 0.8 of the bare
SDK's throughput. ``cpu ms/req`` is the driver's CPU time while the agent ran (and, for Ray, the
workers' CPU time) per request.

Usage: python benchmarks/throughput_ray.py [--latency 0.1] [--concurrency 32] [--workers 2] [--chunks 256]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ray_books import worker_cpu  # noqa: E402
from throughput import BOOK, SLICE, _call, run_bare_sdk, start_server  # noqa: E402

TARGET = 0.8


def run_agent(url: str, corpus: str, concurrency: int, chunks: int, executor: dict) -> dict:
    """One skill-agent run against the server; the server's stats and the CPU used while the agent ran."""
    from prepbench.agents.runner import run_pipeline
    from prepbench.tools.run import RunOptions

    _call(url + "/bench/reset", "POST")
    out = Path(tempfile.mkdtemp(prefix="prepbench-tput-ray-")) / "run"
    opts = RunOptions(
        corpus=[corpus],
        skill="finance",
        out=str(out),
        model="openai:bench-model",
        concurrency=concurrency,
        limit=chunks,
        revisit=False,
        model_options={"base_url": url + "/v1", "concurrency": concurrency, "timeout": 60.0},
        executor=executor,
    )
    cpu: dict[str, float] = {}

    remote = executor.get("kind") == "ray"
    # the local row counts no worker CPU: the previous row's Ray workers may still be ending, and a
    # process that ends inside the window took its CPU seconds out of the sum (0.6 ms/req was printed)
    workers_cpu = worker_cpu if remote else (lambda: 0.0)

    @contextlib.contextmanager
    def agent_phase():
        c0, w0 = time.process_time(), workers_cpu()
        try:
            yield
        finally:
            cpu.update(driver=time.process_time() - c0, workers=workers_cpu() - w0)

    result = run_pipeline(opts, progress=lambda ctx: agent_phase())
    stats = _call(url + "/bench/stats")
    return {**stats, "cpu_s": cpu["driver"] + cpu["workers"], **cpu, "accepted": result["coverage"]["samples"]["accepted"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=256, help="chunks per run (8 per request slot at C = 32)")
    ap.add_argument("--corpus", default=str(BOOK if BOOK.is_dir() else SLICE))
    args = ap.parse_args()
    c = args.concurrency
    print(f"{os.cpu_count()} CPU cores; load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")

    import ray

    ray.init(num_cpus=args.workers, namespace="prepbench", include_dashboard=False, log_to_driver=False, configure_logging=False)
    srv, url = start_server(args.latency, max_s=900.0)
    rows = []
    try:
        r = run_agent(url, args.corpus, c, args.chunks, {"kind": "ray", "workers": args.workers})
        rows.append((f"ray {args.workers} workers", r))
        rows.append(("local", run_agent(url, args.corpus, c, args.chunks, {})))
        bare = run_bare_sdk(url, c, 400)
        rows.append(("bare SDK", {**bare, "cpu_s": bare["client_cpu_s"]}))
    finally:
        srv.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            srv.wait(timeout=10)
        ray.shutdown()
    print(f"corpus: {args.corpus}; latency {args.latency * 1000:.0f} ms; concurrency {c} in total; {args.chunks} chunks per run")
    print(
        f"{'row':>16} {'requests':>9} {'seconds':>8} {'achieved/s':>11} {'ideal/s':>8} {'cpu ms/req':>11} {'server cpu ms/req':>18}"
    )
    rate = {}
    for name, r in rows:
        rate[name] = r["requests"] / r["seconds"] if r["seconds"] else 0.0
        n = max(1, r["requests"])
        print(
            f"{name:>16} {r['requests']:>9} {r['seconds']:>8.2f} {rate[name]:>11.1f} {c / args.latency:>8.1f}"
            f" {1000 * r['cpu_s'] / n:>11.1f} {1000 * r['server_cpu_s'] / n:>18.1f}"
        )
    ray_row = rows[0][1]
    n = max(1, ray_row["requests"])
    print(
        f"ray: driver {1000 * ray_row['driver'] / n:.1f} cpu ms/req (it commits), workers {1000 * ray_row['workers'] / n:.1f} "
        "cpu ms/req (they generate); the driver alone could commit 1000 / (its ms/req) requests/s"
    )
    ratio = rate[rows[0][0]] / rate["bare SDK"] if rate["bare SDK"] else 0.0
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(
        f"{'PASS' if ratio >= TARGET else 'MISS'}: Ray workers plus the driver {ratio:.2f} of the bare SDK's "
        f"{rate['bare SDK']:.1f} req/s at concurrency {c} (target >= {TARGET}); local executor {rate['local'] / rate['bare SDK']:.2f}"
    )


if __name__ == "__main__":
    main()
