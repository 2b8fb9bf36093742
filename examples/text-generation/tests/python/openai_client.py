"""The official OpenAI Python client against a local endpoint's OpenAI route.

Usage: python openai_client.py BASE_URL API_KEY MODEL
Prints one JSON object with what each call gave; tests/openai.rs asserts on it.
"""

import json
import sys
import time
import urllib.request

import openai
from openai import OpenAI

base_url, api_key, model = sys.argv[1], sys.argv[2], sys.argv[3]
# No retries: every call is made once, and a refused one raises at once.
client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=600)
out = {"openai_version": openai.__version__}
question = [{"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"}]

out["models"] = [m.id for m in client.models.list()]

chat = client.chat.completions.create(model=model, messages=question, temperature=0, max_tokens=24)
out["chat"] = {
    "id": chat.id,
    "object": chat.object,
    "model": chat.model,
    "content": chat.choices[0].message.content,
    "role": chat.choices[0].message.role,
    "finish_reason": chat.choices[0].finish_reason,
    "usage": chat.usage.model_dump(),
}

started = time.monotonic()
stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "system", "content": "You are a storyteller."},
              {"role": "user", "content": "Tell me a long story about a dragon."}],
    temperature=0.7, seed=7, max_tokens=64, stream=True, stream_options={"include_usage": True},
)
pieces, first_at, finish, usage, roles = [], None, None, None, []
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage.model_dump()
    for choice in chunk.choices:
        if choice.delta.role:
            roles.append(choice.delta.role)
        if choice.delta.content:
            if first_at is None:
                first_at = time.monotonic() - started
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
out["stream"] = {
    "pieces": pieces, "first_chunk_s": first_at, "total_s": time.monotonic() - started,
    "finish_reason": finish, "usage": usage, "roles": roles,
    "job_id": stream.response.headers.get("x-request-id"),
}

completion = client.completions.create(
    model=model, prompt="The capital of France is", temperature=0, max_tokens=8, stop=["\n"])
out["completion"] = {
    "object": completion.object,
    "text": completion.choices[0].text,
    "finish_reason": completion.choices[0].finish_reason,
    "usage": completion.usage.model_dump(),
}


def refused(call):
    """The exception class, status and message of a call that must fail."""
    try:
        call()
    except openai.APIStatusError as e:
        return {"class": type(e).__name__, "status": e.status_code, "message": e.message, "code": e.code}
    return {"class": None}


wrong = OpenAI(base_url=base_url, api_key="not-the-key", max_retries=0)
out["wrong_key"] = refused(lambda: wrong.chat.completions.create(model=model, messages=question))
out["no_messages"] = refused(lambda: client.chat.completions.create(model=model, messages=[]))
out["n_2"] = refused(lambda: client.chat.completions.create(model=model, messages=question, n=2))
out["other_model"] = refused(lambda: client.chat.completions.create(model="gpt-4o", messages=question))
out["hot"] = refused(
    lambda: client.chat.completions.create(model=model, messages=question, temperature=1e308)
)
out["long_stop"] = refused(
    lambda: client.completions.create(model=model, prompt="a", stop="x" * 1_000_000)
)
out["bad_role"] = refused(
    lambda: client.chat.completions.create(model=model, messages=[{"role": "wizard", "content": "hi"}]))

# A client that stops reading and closes the stream early: the job must end CANCELLED.
# (A completion that counts on: the model does not end it by itself within 2000 tokens.)
long = client.completions.create(
    model=model, prompt="1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", temperature=0, max_tokens=2000, stream=True)
got = 0
for chunk in long:
    if chunk.choices and chunk.choices[0].text:
        got += 1
    if got == 3:
        break
long.close()
job_id = long.response.headers.get("x-request-id")
# The job's status on the endpoint's own API (/v2/{endpoint}/status/{id}), until it has ended.
status_url = base_url.removesuffix("/openai/v1") + f"/status/{job_id}"
deadline = time.monotonic() + 120
while True:
    req = urllib.request.Request(status_url, headers={"Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        status = json.load(resp)["status"]
    if status not in ("IN_QUEUE", "IN_PROGRESS") or time.monotonic() > deadline:
        break
    time.sleep(0.1)
out["closed_early"] = {"job_id": job_id, "chunks_read": got, "status": status}

# The worker takes the next job.
after = client.chat.completions.create(model=model, messages=question, temperature=0, max_tokens=8)
out["after_close"] = {"content": after.choices[0].message.content}

print(json.dumps(out))
