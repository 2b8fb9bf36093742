"""Calls a runpod-local endpoint through a client that openapi-python-client generated from its
/openapi.json (tests/it/openapi.rs). Usage: openapi_client.py PACKAGE_PARENT BASE_URL API_KEY.

The package `echo_client` was generated from a document whose worker schema is the echo
worker's: its models are the worker's own types (EchoInput, EchoOutput). Prints one JSON object
with what each call gave back; the Rust test checks it.
"""

import json
import sys
import time

sys.path.insert(0, sys.argv[1])

from echo_client import AuthenticatedClient  # noqa: E402
from echo_client.api.default import health, run, runsync, status  # noqa: E402
from echo_client.models import EchoInput, EchoOutput, Error, JobRequest  # noqa: E402

client = AuthenticatedClient(base_url=sys.argv[2], token=sys.argv[3], raise_on_unexpected_status=True)
seen = {}

queued = run.sync(client=client, body=JobRequest(input_=EchoInput(message="typed", repeat=2)))
seen["run"] = {"id": queued.id, "status": queued.status.value}
deadline = time.monotonic() + 60
while True:
    job = status.sync(queued.id, client=client)
    if job.status.value in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
        break
    time.sleep(0.1)
assert isinstance(job.output, EchoOutput), type(job.output)
seen["status"] = {"status": job.status.value, "echo": job.output.echo, "repeat": job.output.repeat}

done = runsync.sync(client=client, body=JobRequest(input_=EchoInput(message="sync")))
seen["runsync"] = {"status": done.status.value, "echo": done.output.echo, "repeat": done.output.repeat}

refused = run.sync_detailed(client=client, body=JobRequest(input_=EchoInput(message="x", repeat=500)))
assert isinstance(refused.parsed, Error), refused
seen["refused"] = {"code": refused.status_code.value, "error": refused.parsed.error}

counts = health.sync(client=client)
seen["health"] = {"completed": counts.jobs.completed}
print(json.dumps(seen))
