"""The official runpod SDK's worker, for runpod-worker's wire comparison (tests/wire_sdk.rs).

WORKER_MODE picks the handler: "plain" (a progress update then a result, or an exception when
the input asks for it) or "generator" (two chunks, or an exception before the first). The Rust
test runs handlers that do the same.
"""

import os
import time

import runpod


def plain(job):
    inp = job["input"]
    if inp.get("fail"):
        raise ValueError("bad input")
    runpod.serverless.progress_update(job, {"done": 1})
    # The SDK posts progress from a thread of its own: let it arrive before the result.
    time.sleep(0.5)
    return {"echo": inp["message"]}


def generator(job):
    if job["input"].get("fail"):
        raise ValueError("boom")
    for chunk in ("a", "b"):
        yield chunk


MODES = {"plain": {"handler": plain}, "generator": {"handler": generator}}

runpod.serverless.start(MODES[os.environ["WORKER_MODE"]])
