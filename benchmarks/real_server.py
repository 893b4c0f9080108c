"""prepbench and synthetic-data-kit against the same real model server, on the same chapter.

The server is llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct on one CPU
thread (``tests/llama_server.py``, from the ``real-model`` extra). On the first ``--limit`` chunks
of *Principles of Finance* chapter 7 (``../shared/corpora``) it runs:

- ``prepbench run`` with the skill agent and the direct agent, at ``--concurrency`` 1 and 4;
- synthetic-data-kit 0.0.5 (``ingest``, ``create --type qa``, ``curate``, ``save-as``) on the text of
  the same chunks, installed by this script into its own virtual environment (``--sdk-venv``), since
  its dependencies are not prepbench's; when it does not install, the row says why.

For each it prints: wall time, chat-completion requests the server answered (its access log),
the share of the wall time the server was busy (the sum of llama.cpp's own ``total time`` per
request, over the command's wall time), samples produced, and the failures with whether each was
explained (prepbench: every chunk not kept has a skip reason or an error in the ledger; synthetic-
data-kit: a failed step exits non-zero with a message). Target: prepbench keeps the server busy at
least 95% of the wall time at concurrency 1.

    python benchmarks/real_server.py [--limit 8] [--skill general] [--max-tokens 256] [--no-sdk]

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO.parent / "shared" / "corpora" / "finance" / "openstax-principles-of-finance"
CHAPTER = "07-time-value-of-money-i-single-payment-value.md"
SDK = "synthetic-data-kit==0.0.5"
MODEL = "smollm2"


def prepbench_row(server, corpus: Path, out: Path, agent: str, concurrency: int, a: argparse.Namespace) -> dict:
    """One ``prepbench run`` (fresh) against the server, measured."""
    from prepbench.tools.ledger import RunFolder

    cmd = [sys.executable, "-m", "prepbench.tools.cli", "run", "--corpus", str(corpus), "--skill", a.skill, "--out", str(out)]
    cmd += ["--agent", agent, "--model", f"openai:{MODEL}", "--base-url", server.url + "/v1", "--limit", str(a.limit)]
    cmd += ["--concurrency", str(concurrency), "--max-tokens", str(a.max_tokens), "--max-repairs", "0", "--no-revisit"]
    cmd += ["--timeout", "600", "--fresh", "-q"]
    offset, t0, started = server.offset(), time.perf_counter(), time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    wall, ended = time.perf_counter() - t0, time.time()
    led = RunFolder.open(out, readonly=True)
    try:
        rows = led.chunk_rows()
        accepted = len(led.sample_rows(status="accepted"))
        probes, finished = led.events("probe"), led.events("finished")
        mode = probes[-1]["data"].get("structured") if probes else "-"
        # where the server waited on prepbench: before the probe's first request, after the agent ended
        before = probes[-1]["created_at"] - probes[-1]["data"].get("seconds", 0.0) - started if probes else None
        after = ended - finished[-1]["created_at"] if finished else None
    finally:
        led.close()
    not_kept = [r for r in rows if r["status"] != "kept"]
    explained = [r for r in not_kept if r["skip_reason"] or r["error"]]
    reasons: dict[str, int] = {}
    for r in not_kept:
        key = r["skip_reason"] or (
            "failed: " + (r["error"] or "?").split(": ", 1)[-1][:40] if r["status"] == "failed" else r["status"]
        )
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "tool": f"prepbench {agent}",
        "concurrency": concurrency,
        "rc": proc.returncode,
        "wall_s": wall,
        "requests": len(server.requests(offset)),
        "busy": server.busy_seconds(offset) / wall,
        "samples": accepted,
        "idle": f"{before:.1f} s before the first request, {after:.1f} s after the agent ended"
        if before is not None and after is not None
        else "",
        "failures": f"{len(not_kept)} not kept, {len(explained)} explained (output {mode}): "
        + ", ".join(f"{k} x{n}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1])),
    }


def ensure_sdk(venv: Path) -> tuple[Path | None, str]:
    """synthetic-data-kit's command in its own venv, created and installed when missing; else ``(None, why)``."""
    exe = venv / "bin" / "synthetic-data-kit"
    if exe.exists():
        return exe, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", SDK], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return None, f"no venv: {e}"
    if pip.returncode != 0 or not exe.exists():
        lines = [ln for ln in (pip.stderr or pip.stdout).splitlines() if ln.strip() and "WARNING: Location" not in ln]
        return None, f"pip install {SDK} failed: {lines[-1] if lines else pip.returncode}"
    return exe, ""


def sdk_config(path: Path, server, a: argparse.Namespace) -> None:
    """synthetic-data-kit's config: its api-endpoint provider on the same server, model and output limit."""
    import yaml

    base = Path(str(path.parent))
    config = {
        "paths": {
            "input": str(base / "input"),
            "output": {k: str(base / k) for k in ("parsed", "generated", "curated", "final")},
        },
        "llm": {"provider": "api-endpoint"},
        "api-endpoint": {
            "api_base": server.url + "/v1",
            "api_key": "not-needed",
            "model": MODEL,
            "max_retries": 3,
            "retry_delay": 1.0,
        },
        "generation": {"temperature": 0.7, "max_tokens": a.max_tokens, "num_pairs": 2 * a.limit, "batch_size": 4},
    }
    path.write_text(yaml.safe_dump(config))


def sdk_row(server, text: str, work: Path, a: argparse.Namespace) -> dict:
    """synthetic-data-kit's four steps on ``text`` (the chunks prepbench saw), measured."""
    row = {
        "tool": "synthetic-data-kit 0.0.5",
        "concurrency": "-",
        "rc": "-",
        "wall_s": 0.0,
        "requests": 0,
        "busy": 0.0,
        "samples": 0,
    }
    exe, why = ensure_sdk(Path(a.sdk_venv))
    if exe is None:
        return {**row, "failures": f"not run: {why}"}
    work.mkdir(parents=True, exist_ok=True)
    (work / "input").mkdir(exist_ok=True)
    doc = work / "input" / "chapter7.txt"
    doc.write_text(text, encoding="utf-8")
    cfg = work / "config.yaml"
    sdk_config(cfg, server, a)
    steps = [
        ("ingest", [str(doc), "-o", str(work / "parsed")]),
        ("create", [str(work / "parsed" / "chapter7.txt"), "--type", "qa", "-o", str(work / "generated")]),
        ("curate", [str(work / "generated" / "chapter7_qa_pairs.json"), "-o", str(work / "curated" / "chapter7.json")]),
        ("save-as", [str(work / "curated" / "chapter7.json"), "-f", "alpaca", "-o", str(work / "final" / "chapter7.json")]),
    ]
    offset, t0, notes, rcs = server.offset(), time.perf_counter(), [], []
    env = {**os.environ, "API_ENDPOINT_KEY": "not-needed", "COLUMNS": "200"}
    for name, args in steps:
        p = subprocess.run([str(exe), "-c", str(cfg), name, *args], capture_output=True, text=True, env=env, cwd=work)
        rcs.append(p.returncode)
        errors = [ln.strip() for ln in (p.stdout + p.stderr).splitlines() if "error" in ln.lower()]
        if errors:
            notes.append(f"{name} rc {p.returncode}: {errors[0][:90]}")
    wall = time.perf_counter() - t0
    final = work / "final" / "chapter7.json"
    try:
        pairs = len(json.loads(final.read_text()))
    except (OSError, ValueError):
        pairs = 0
    unexplained = sum(1 for n in notes if " rc 0:" in n)
    return {
        **row,
        "rc": "/".join(map(str, rcs)),
        "wall_s": wall,
        "requests": len(server.requests(offset)),
        "busy": server.busy_seconds(offset) / wall,
        "samples": pairs,
        "failures": (f"{len(notes)} step(s) printed errors, {unexplained} of them exited 0: " + "; ".join(notes))
        if notes
        else "none printed",
    }


def chunk_text(run: Path) -> str:
    """The text of the chunks a prepbench run processed, in order."""
    from prepbench.tools.ledger import RunFolder

    led = RunFolder.open(run, readonly=True)
    try:
        return "\n\n".join(c.text for c in led.chunks())
    finally:
        led.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=8, help="chunks of chapter 7 (default 8)")
    ap.add_argument("--skill", default="general", help="skill of the prepbench runs (default general)")
    ap.add_argument("--max-tokens", type=int, default=256, help="output limit per request, for both tools")
    ap.add_argument("--concurrency", default="1,4", help="prepbench concurrencies (default 1,4)")
    ap.add_argument("--agents", default="skill,direct")
    ap.add_argument("--sdk-venv", default=str(Path.home() / ".cache" / "prepbench" / "sdk-venv"))
    ap.add_argument("--no-sdk", action="store_true", help="skip synthetic-data-kit")
    ap.add_argument("--keep", help="keep the run folders and the server log here")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from llama_server import LlamaServer, ServerUnavailable

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="prepbench-real-"))
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(BOOK / CHAPTER, corpus)
    shutil.copy(BOOK / "SOURCE.md", corpus)
    rows = []
    try:
        server = LlamaServer(work / "server", n_ctx=4096, threads=1).start()
    except ServerUnavailable as e:  # llama-cpp-python missing, the model's checksum, ...: one line
        sys.exit(f"error: {e}")
    try:
        print(
            f"llama-cpp-python server {server.url}, SmolLM2-135M-Instruct Q4_1, 1 thread; chapter 7, {a.limit} chunks", flush=True
        )
        for agent in a.agents.split(","):
            for c in (int(x) for x in a.concurrency.split(",")):
                rows.append(prepbench_row(server, corpus, work / f"{agent}-c{c}", agent, c, a))
                print(render([rows[-1]], header=False), flush=True)
        if not a.no_sdk:
            first = work / f"{a.agents.split(',')[0]}-c{a.concurrency.split(',')[0]}"
            rows.append(sdk_row(server, chunk_text(first), work / "sdk", a))
    finally:
        server.stop()
    print()
    print(render(rows))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


def render(rows: list[dict], header: bool = True) -> str:
    """The rows as a fixed-width table."""
    lines = []
    if header:
        lines.append(f"{'tool':<26} {'conc':>4} {'exit':>8} {'wall s':>8} {'requests':>8} {'busy':>6} {'samples':>7}  failures")
    for r in rows:
        lines.append(
            f"{r['tool']:<26} {str(r['concurrency']):>4} {str(r['rc']):>8} {r['wall_s']:>8.1f} {r['requests']:>8} "
            f"{r['busy']:>6.1%} {r['samples']:>7}  {r['failures']}"
        )
        if r.get("idle"):
            lines.append(f"{'':<26} server idle: {r['idle']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
