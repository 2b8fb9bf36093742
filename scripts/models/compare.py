"""Our example models against the Python stack, side by side on the same machine, the same
weights, the same inputs and the same thread count:

  embeddings       `embed_bench` (candle)  vs  sentence-transformers `encode`
  text generation  `generate_bench`        vs  transformers `generate` (greedy)

Each round starts one process per side, in alternating order (ours first in even rounds), so
both sides see the same machine load; each process loads the model, warms up and times its runs.
The table gives min / median / max over all timed runs and the ratio ours/theirs of the medians
(above 1.0: ours is faster) with the range of the per-round ratios. It also checks that the two
sides agree: the cosine between our vector and theirs for every sentence, and the first greedy
tokens.

Run it with the peer's Python (torch, sentence-transformers, transformers); see
scripts/bench-models.sh (CPU) and scripts/gpu-kit.sh (GPU), which set everything up. Writes a
JSON report (every sample) and a markdown table.
"""

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STARTED = time.monotonic()


def past_deadline(args, round_index):
    """True once --deadline seconds have passed; the first round always runs in full."""
    return round_index > 0 and args.deadline and time.monotonic() - STARTED > args.deadline

WORDS = (
    "the of and to in is was for on that with as by at from his her an were are which this be "
    "river bridge engine market weather city garden theory signal network window kitchen morning "
    "quickly slowly carefully never always often rebuilt measured announced watched ignored "
    "compiler storm traffic result history printing press library museum season harbor mountain "
    "student teacher doctor farmer pilot writer painter council village station factory planet "
    "ocean forest desert island valley winter summer spring autumn yellow green silver ancient "
    "modern quiet noisy bright narrow heavy light simple complex public private local national "
    "report study model system method process value energy water light sound image picture story "
    "because although while after before during under above between through across around"
).split()


def sentence_sets(n, seed):
    """Two sets of `n` texts: uniform short sentences, and mixed lengths (2 to ~300 words)."""
    subjects = ["The cat", "A young programmer", "The old bridge", "Our team", "The weather service"]
    verbs = ["quietly watched", "carefully rebuilt", "announced", "ignored", "measured"]
    objects = ["the rising river.", "a new compiler.", "the morning traffic.", "every result twice.", "the storm."]
    uniform = [f"{subjects[i % 5]} {verbs[(i // 5) % 5]} {objects[(i // 25) % 5]} ({i})" for i in range(n)]
    rng = random.Random(seed)
    mixed = []
    for _ in range(n):
        r = rng.random()
        words = rng.randint(2, 15) if r < 0.5 else rng.randint(16, 60) if r < 0.85 else rng.randint(61, 300)
        mixed.append(" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + ".")
    return {"uniform": uniform, "mixed": mixed}


class GpuPeak:
    """Polls nvidia-smi for the largest memory a process (and its children) held on the GPU."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                    capture_output=True, text=True, timeout=10,
                ).stdout
                for line in out.splitlines():
                    pid, used = [x.strip() for x in line.split(",")[:2]]
                    if pid == str(self.pid):
                        self.peak = max(self.peak, int(used) * 1024 * 1024)
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
            self._stop.wait(0.1)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


def run_side(cmd, env, device, log, timeout):
    """Runs one measured process; returns its JSON line (plus the polled GPU peak) or raises."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    poll = GpuPeak(proc.pid) if device.startswith("cuda") else None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\n(killed after {timeout} s)"
    peak = poll.stop() if poll else None
    wall = time.perf_counter() - started
    log.write(f"$ {' '.join(cmd)}\n{err}\n")
    log.flush()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(err.strip().splitlines()[-15:])
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1])
    result["process_seconds"] = wall
    if peak is not None:
        result["gpu_process_peak_bytes"] = peak
    return result


def stats(xs):
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "n": len(xs)}


def cosines(a_path, b_path, dims):
    import numpy as np

    a = np.fromfile(a_path, dtype="<f4").reshape(-1, dims).astype("f8")
    b = np.fromfile(b_path, dtype="<f4").reshape(-1, dims).astype("f8")
    if a.shape != b.shape:
        return {"error": f"shapes differ: {a.shape} vs {b.shape}"}
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    return {"min": float(cos.min()), "mean": float(cos.mean()), "worst_index": int(cos.argmin())}


def env_for(args, side, extra=None):
    env = dict(os.environ)
    if args.threads:
        n = str(args.threads)
        # Both sides: the tokenizers' rayon pool and candle's (RAYON_NUM_THREADS), torch's
        # OpenMP pool (OMP/MKL_NUM_THREADS, set again in peer.py) without busy-waiting.
        env.update(RAYON_NUM_THREADS=n, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OMP_WAIT_POLICY="PASSIVE")
    env["TOKENIZERS_PARALLELISM"] = "true"
    if side == "ours":
        env["DEVICE"] = args.device
    env.update(extra or {})
    return env


def bench_embeddings(args, work, log, report):
    sets = sentence_sets(args.embed_sentences, args.seed)
    cases = []
    for set_name in args.embed_sets.split(","):
        path = os.path.join(work, f"texts-{set_name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for t in sets[set_name]:
                f.write(json.dumps(t) + "\n")
        for dtype in args.embed_dtypes.split(","):
            cases.append((set_name, path, dtype))
    results = {}
    for r in range(args.rounds):
        if past_deadline(args, r):
            print(f"  embeddings: deadline reached, {r} rounds done", file=sys.stderr)
            break
        for set_name, path, dtype in cases:
            sides = ["ours", "theirs"] if r % 2 == 0 else ["theirs", "ours"]
            for side in sides:
                prefix = os.path.join(work, f"vec-{side}-{set_name}-{dtype}")
                if side == "ours":
                    cmd = [os.path.join(args.ours, "embed_bench"), "--texts", path, "--batches", args.embed_batches,
                           "--repeat", str(args.repeat), "--vectors", prefix]
                    env = env_for(args, side, {"MODEL_DIR": args.embed_model, "DTYPE": dtype})
                else:
                    cmd = [sys.executable, os.path.join(HERE, "peer.py"), "embed", "--model", args.embed_model,
                           "--texts", path, "--batches", args.embed_batches, "--repeat", str(args.repeat),
                           "--vectors", prefix, "--device", args.device, "--dtype", dtype,
                           "--threads", str(args.threads)]
                    env = env_for(args, side)
                out = run_side(cmd, env, args.device, log, args.timeout)
                print(f"  embeddings {set_name} {dtype} round {r + 1} {side}: "
                      + ", ".join(f"b{x['batch']} {out['sentences'] / min(x['seconds']):.1f}/s" for x in out["runs"]),
                      file=sys.stderr, flush=True)
                results.setdefault((set_name, dtype), {"ours": [], "theirs": []})[side].append(out)
    rows = []
    for (set_name, dtype), by_side in results.items():
        ours0, theirs0 = by_side["ours"][0], by_side["theirs"][0]
        for batch in [int(b) for b in args.embed_batches.split(",")]:
            row = {"set": set_name, "dtype": dtype, "batch": batch, "sentences": ours0["sentences"],
                   "tokens": ours0["tokens"], "theirs_tokens": theirs0["tokens"]}
            per_round = {}
            for side in ("ours", "theirs"):
                samples, rounds = [], []
                for out in by_side[side]:
                    run = next(x for x in out["runs"] if x["batch"] == batch)
                    rates = [out["sentences"] / s for s in run["seconds"]]
                    samples += rates
                    rounds.append(statistics.median(rates))
                row[side] = stats(samples)
                per_round[side] = rounds
                peaks = [o.get("gpu_process_peak_bytes") for o in by_side[side] if o.get("gpu_process_peak_bytes")]
                if peaks:
                    row[f"{side}_gpu_process_peak_bytes"] = max(peaks)
                torch_peaks = [o.get("gpu_peak_bytes") for o in by_side[side] if o.get("gpu_peak_bytes")]
                if torch_peaks:
                    row[f"{side}_torch_allocated_peak_bytes"] = max(torch_peaks)
                row[f"{side}_impl"] = by_side[side][0]["impl"]
            ratios = [o / t for o, t in zip(per_round["ours"], per_round["theirs"])]
            row["ratio"] = row["ours"]["median"] / row["theirs"]["median"]
            row["ratio_range"] = [min(ratios), max(ratios)]
            row["cosine"] = cosines(
                os.path.join(work, f"vec-ours-{set_name}-{dtype}-b{batch}.f32"),
                os.path.join(work, f"vec-theirs-{set_name}-{dtype}-b{batch}.f32"),
                ours0["dimensions"],
            )
            rows.append(row)
    report["embeddings"] = rows
    return rows


def bench_generation(args, work, log, report):
    rows = []
    for spec in args.gen_model:
        name, model_dir = spec.split("=", 1)
        with open(os.path.join(model_dir, "config.json")) as f:
            vocab = json.load(f)["vocab_size"]
        rng = random.Random(args.seed)
        prompt = " ".join(f"t{rng.randrange(1, vocab)}" for _ in range(args.gen_prompt_tokens))
        by_side = {"ours": [], "theirs": []}
        for r in range(args.rounds):
            if past_deadline(args, r):
                print(f"  generation {name}: deadline reached, {r} rounds done", file=sys.stderr)
                break
            for side in (["ours", "theirs"] if r % 2 == 0 else ["theirs", "ours"]):
                if side == "ours":
                    cmd = [os.path.join(args.ours, "generate_bench"), "--prompt", prompt,
                           "--new-tokens", str(args.gen_new_tokens), "--repeat", str(args.repeat)]
                    env = env_for(args, side, {"MODEL_DIR": model_dir})
                else:
                    cmd = [sys.executable, os.path.join(HERE, "peer.py"), "generate", "--model", model_dir,
                           "--prompt", prompt, "--new-tokens", str(args.gen_new_tokens), "--repeat", str(args.repeat),
                           "--device", args.device, "--dtype", args.gen_dtype, "--threads", str(args.threads)]
                    env = env_for(args, side)
                out = run_side(cmd, env, args.device, log, args.timeout)
                runs = out["runs"]
                print(f"  generation {name} round {r + 1} {side}: prefill "
                      f"{out['prompt_tokens'] / min(x['prefill_seconds'] for x in runs):.0f} tok/s, decode "
                      f"{(out['generated_tokens'] - 1) / min(x['decode_seconds'] for x in runs):.1f} tok/s",
                      file=sys.stderr, flush=True)
                by_side[side].append(out)
        ours0, theirs0 = by_side["ours"][0], by_side["theirs"][0]
        agree = 0
        for a, b in zip(ours0["tokens"], theirs0["tokens"]):
            if a != b:
                break
            agree += 1
        base = {"model": name, "prompt_tokens": ours0["prompt_tokens"], "new_tokens": ours0["generated_tokens"],
                "theirs_prompt_tokens": theirs0["prompt_tokens"], "agree_prefix": agree,
                "compared": min(len(ours0["tokens"]), len(theirs0["tokens"])),
                "ours_tokens": ours0["tokens"][:40], "theirs_tokens": theirs0["tokens"][:40]}
        for phase in ("prefill", "decode", "overall"):
            row = dict(base, phase=phase)
            per_round = {}
            for side in ("ours", "theirs"):
                samples, rounds = [], []
                for out in by_side[side]:
                    p, n = out["prompt_tokens"], out["generated_tokens"]
                    rates = []
                    for x in out["runs"]:
                        if phase == "prefill":
                            rates.append(p / x["prefill_seconds"])
                        elif phase == "decode":
                            rates.append((n - 1) / x["decode_seconds"])
                        else:
                            rates.append(n / (x["prefill_seconds"] + x["decode_seconds"]))
                    samples += rates
                    rounds.append(statistics.median(rates))
                row[side] = stats(samples)
                per_round[side] = rounds
                row[f"{side}_impl"] = by_side[side][0]["impl"]
                peaks = [o.get("gpu_process_peak_bytes") for o in by_side[side] if o.get("gpu_process_peak_bytes")]
                if peaks:
                    row[f"{side}_gpu_process_peak_bytes"] = max(peaks)
                torch_peaks = [o.get("gpu_peak_bytes") for o in by_side[side] if o.get("gpu_peak_bytes")]
                if torch_peaks:
                    row[f"{side}_torch_allocated_peak_bytes"] = max(torch_peaks)
            ratios = [o / t for o, t in zip(per_round["ours"], per_round["theirs"])]
            row["ratio"] = row["ours"]["median"] / row["theirs"]["median"]
            row["ratio_range"] = [min(ratios), max(ratios)]
            rows.append(row)
    report["generation"] = rows
    return rows


def fmt(s, digits=1):
    return f"{s['min']:.{digits}f} / {s['median']:.{digits}f} / {s['max']:.{digits}f}"


def mib(row, side):
    b = row.get(f"{side}_gpu_process_peak_bytes")
    return f"{b / 2**20:.0f}" if b else "-"


def markdown(report):
    m = report["machine"]
    lines = [
        f"Measured {report['date']} at commit {report['commit']} on {m['description']}, "
        f"{m['threads']} threads per side, load average {m['load_before']} before and {m['load_after']} after; "
        f"up to {report['rounds']} rounds (one process per side each, alternating who goes first) "
        f"x {report['repeat']} timed runs. Peer: {report.get('peer', '?')}.",
        "",
    ]
    gpu = report["device"].startswith("cuda")
    if report.get("embeddings"):
        lines += [
            "| sentences | batch | dtype | ours sentences/s (min / median / max) | theirs | ours/theirs (per-round range) | min cosine |"
            + (" GPU MiB ours / theirs |" if gpu else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if gpu else ""),
        ]
        for r in report["embeddings"]:
            cos = r["cosine"].get("min")
            lines.append(
                f"| {r['set']} ({r['sentences']}, {r['tokens']} tokens) | {r['batch']} | {r['dtype']} | {fmt(r['ours'])} | "
                f"{fmt(r['theirs'])} | **{r['ratio']:.2f}x** ({r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f}) | "
                f"{cos if cos is None else f'{cos:.6f}'} |" + (f" {mib(r, 'ours')} / {mib(r, 'theirs')} |" if gpu else "")
            )
        lines.append("")
    if report.get("generation"):
        lines += [
            "| model | phase | ours tokens/s (min / median / max) | theirs | ours/theirs (per-round range) | greedy tokens agree |"
            + (" GPU MiB ours / theirs |" if gpu else ""),
            "|---|---|---|---|---|---|" + ("---|" if gpu else ""),
        ]
        for r in report["generation"]:
            phase = {"prefill": f"prefill ({r['prompt_tokens']} tokens)", "decode": f"decode ({r['new_tokens'] - 1} tokens)",
                     "overall": "prefill + decode"}[r["phase"]]
            agree = ("all " if r["agree_prefix"] == r["compared"] else "first ") + f"{r['agree_prefix']} of {r['compared']}"
            lines.append(
                f"| {r['model']} | {phase} | {fmt(r['ours'])} | {fmt(r['theirs'])} | **{r['ratio']:.2f}x** "
                f"({r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f}) | {agree} |"
                + (f" {mib(r, 'ours')} / {mib(r, 'theirs')} |" if gpu else "")
            )
        lines.append("")
    return "\n".join(lines)


def machine(args):
    desc = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        desc = f"{names[0]} ({len(names)} CPUs)" if names else desc
    except OSError:
        pass
    if args.device.startswith("cuda"):
        try:
            gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
            desc = f"{gpu}, {desc}"
        except (OSError, IndexError, subprocess.SubprocessError):
            pass
    return {"description": desc, "threads": args.threads or "default", "load_before": load(), "device": args.device}


def load():
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ours", required=True, help="folder holding our embed_bench and generate_bench")
    p.add_argument("--device", default="cpu", help="cpu or cuda (our DEVICE, their torch device)")
    p.add_argument("--threads", type=int, default=2, help="threads per side on the CPU (0: leave the defaults)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=1, help="timed runs per process")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--embed-model", help="a sentence-transformers folder (config, tokenizer, weights)")
    p.add_argument("--embed-sets", default="uniform,mixed")
    p.add_argument("--embed-sentences", type=int, default=512)
    p.add_argument("--embed-batches", default="32,128")
    p.add_argument("--embed-dtypes", default="f32")
    p.add_argument("--gen-model", action="append", default=[], help="NAME=DIR, a folder from make_models.py")
    p.add_argument("--gen-prompt-tokens", type=int, default=32)
    p.add_argument("--gen-new-tokens", type=int, default=64)
    p.add_argument("--gen-dtype", default="f32", help="their dtype (ours: f32 on the CPU, f16 on CUDA)")
    p.add_argument("--timeout", type=int, default=600, help="seconds one process may take")
    p.add_argument("--deadline", type=float, default=0, help="start no new round after this many seconds (0: none)")
    p.add_argument("--work", default=None, help="folder for texts, vectors and the log (default: a temp folder)")
    p.add_argument("--commit", default=os.environ.get("BENCH_COMMIT", "?"))
    p.add_argument("--peer", default=None, help="what the peer is, for the table (default: read from its output)")
    p.add_argument("--json", help="write the full report here")
    p.add_argument("--markdown", help="write the table here")
    args = p.parse_args()

    import tempfile

    work = args.work or tempfile.mkdtemp(prefix="compare-models-")
    os.makedirs(work, exist_ok=True)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": args.commit,
        "device": args.device,
        "rounds": args.rounds,
        "repeat": args.repeat,
        "machine": machine(args),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "markdown")},
    }
    failures = []
    with open(os.path.join(work, "log.txt"), "a") as log:
        if args.embed_model:
            try:
                bench_embeddings(args, work, log, report)
            except Exception as e:  # noqa: BLE001 - reported, and the other half still runs
                failures.append(f"embeddings: {e}")
        if args.gen_model:
            try:
                bench_generation(args, work, log, report)
            except Exception as e:  # noqa: BLE001
                failures.append(f"generation: {e}")
    report["machine"]["load_after"] = load()
    peers = {r["theirs_impl"] for r in report.get("embeddings", []) + report.get("generation", [])}
    report["peer"] = args.peer or "; ".join(sorted(peers))
    report["failures"] = failures
    table = markdown(report)
    if failures:
        table += "\n" + "\n".join(f"FAILED: {f}" for f in failures) + "\n"
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
