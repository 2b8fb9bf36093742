"""A worker built on the official runpod SDK, for runpod-local's compatibility test.

WORKER_MODE picks the handler: "plain" (async, returns a value, fails on request, sleeps on
request so that it can be cancelled), "generator" (streams chunks) or "progress" (calls
progress_update before returning) or "batch" (the plain handler, 4 jobs at a time).
"""

import asyncio
import os
import time

import runpod


async def plain(job):
    inp = job["input"]
    if inp.get("raise"):
        raise ValueError("asked to raise")
    if inp.get("return_error"):
        return {"error": "returned an error"}
    if inp.get("sleep"):
        await asyncio.sleep(inp["sleep"])
    bucket = (job.get("s3Config") or {}).get("bucketName")
    return {"double": inp.get("n", 0) * 2, "bucket": bucket}


def generator(job):
    for i in range(job["input"]["count"]):
        time.sleep(0.05)
        yield {"chunk": i}


def progress(job):
    for step in range(3):
        runpod.serverless.progress_update(job, f"step {step}")
        time.sleep(0.8)
    return "done"


MODES = {
    "plain": {"handler": plain},
    "generator": {"handler": generator, "return_aggregate_stream": True},
    "progress": {"handler": progress},
    # Up to 4 jobs at once: the SDK then takes jobs with job-take-batch.
    "batch": {"handler": plain, "concurrency_modifier": lambda current: 4},
}

runpod.serverless.start(MODES[os.environ["WORKER_MODE"]])
