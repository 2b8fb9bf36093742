"""The benchmark's peer: llama-cpp-python generating from the same GGUF file, one request per
line on stdin (a JSON object: prompt, max_tokens), one JSON line per request on stdout:
{"tokens", "seconds", "ttft", "text"}. Greedy, CPU, N threads (argv[2]).
"""

import json
import sys
import time

from llama_cpp import Llama

llm = Llama(model_path=sys.argv[1], n_threads=int(sys.argv[2]), n_threads_batch=int(sys.argv[2]),
            n_ctx=4096, verbose=False)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    # Without this, llama-cpp-python reuses the KV cache of the previous request when the prompt
    # starts the same way, and skips the prompt: the first token would not be comparable.
    llm.reset()
    started = time.perf_counter()
    ttft, tokens, text = None, 0, ""
    for chunk in llm.create_completion(req["prompt"], max_tokens=req["max_tokens"], temperature=0.0,
                                       stream=True):
        if ttft is None:
            ttft = time.perf_counter() - started
        tokens += 1
        text += chunk["choices"][0]["text"]
    print(json.dumps({"tokens": tokens, "seconds": time.perf_counter() - started, "ttft": ttft, "text": text}),
          flush=True)
