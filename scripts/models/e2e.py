"""One embeddings job end to end, the way a deployment runs it: `runpod-local` (the endpoint) in
one process, the embeddings worker in another, pointed at it with the RUNPOD_* variables that
`runpod-local worker-env` prints, a `/runsync` request over HTTP, and the answer checked against
sentence-transformers on the same model (cosine of every vector).

  python e2e.py --bin DIR --model DIR [--device cpu|cuda] [--json OUT]

DIR holds the `runpod-local` and `embeddings` binaries. Prints one JSON line; exit status 1 when
the job did not complete or the vectors disagree (cosine <= 0.999).
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The stock market fell sharply today.",
    "GPUs turn matrix products into throughput.",
]


def wait_for_line(proc, prefix, timeout):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"no line starting {prefix!r}; output: {''.join(seen)[-2000:]}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json")
    args = p.parse_args()
    key = "e2e-key"
    result = {"check": "e2e", "device": args.device, "ok": False}
    endpoint = subprocess.Popen(
        [os.path.join(args.bin, "runpod-local"), "--port", "0", "--api-key", key],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    worker = None
    log_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"e2e-worker-{os.getpid()}.log")
    try:
        base = wait_for_line(endpoint, "runpod-local listening on ", 30)
        env_lines = subprocess.run(
            [os.path.join(args.bin, "runpod-local"), "worker-env", "--url", base, "--worker-id", "e2e",
             "--api-key", key, "--ping-interval-ms", "2000"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()
        env = dict(os.environ)
        env.update(line.split("=", 1) for line in env_lines if "=" in line)
        env.update(MODEL_DIR=args.model, DEVICE=args.device)
        started = time.time()
        with open(log_path, "w") as log:
            worker = subprocess.Popen([os.path.join(args.bin, "embeddings")], env=env, stdout=log, stderr=log)
        body = json.dumps({"input": {"input": TEXTS}}).encode()
        req = urllib.request.Request(
            f"{base}/v2/local/runsync?wait=120000", data=body, method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=180) as resp:
            answer = json.load(resp)
        result["seconds_from_worker_start"] = time.time() - started
        result["status"] = answer.get("status")
        out = answer.get("output") or {}
        result["dimensions"] = out.get("dimensions")
        result["tokens"] = out.get("tokens")
        vectors = out.get("embeddings") or []
        if result["status"] == "COMPLETED" and len(vectors) == len(TEXTS):
            import numpy as np
            from sentence_transformers import SentenceTransformer

            ref = SentenceTransformer(args.model, device=args.device).encode(TEXTS, normalize_embeddings=True)
            ours = np.asarray(vectors, dtype="f8")
            cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
            result["min_cosine_vs_sentence_transformers"] = float(cos.min())
            result["ok"] = bool(cos.min() > 0.999)
        else:
            result["answer"] = str(answer)[:1000]
    except Exception as e:  # noqa: BLE001 - reported in the JSON
        result["error"] = str(e)
    finally:
        for proc in (worker, endpoint):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        result["worker_exit"] = worker.returncode if worker else None
        try:
            with open(log_path) as f:
                result["worker_log_tail"] = f.read()[-1500:]
            os.remove(log_path)
        except OSError:
            pass
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
