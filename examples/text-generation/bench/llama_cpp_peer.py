"""The benchmark's peer: llama-cpp-python generating from the same GGUF file, one request per
line on stdin (a JSON object: prompt, max_tokens), one JSON line per request on stdout:
{"tokens", "seconds", "ttft", "text"}. Greedy, CPU, N threads (argv[2]).
"""

import json
import sys
import time

from llama_cpp import Llama

# Flash attention on, as the worker has it (llama.cpp's default, "auto", turns it on for the
# CPU; llama-cpp-python's `flash_attn` defaults to off). The two attention kernels round
# differently: with it off here, greedy text matched the worker's on 13 of 20 prompts, with it
# on, on 20 of 20; and it is the quicker of the two for a long prompt on both sides.
llm = Llama(model_path=sys.argv[1], n_threads=int(sys.argv[2]), n_threads_batch=int(sys.argv[2]),
            n_ctx=4096, flash_attn=True, verbose=False)
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
        choice = chunk["choices"][0]
        # One chunk per new token, then one more with no text that gives the finish reason.
        if choice["finish_reason"] is None:
            tokens += 1
        text += choice["text"]
    print(json.dumps({"tokens": tokens, "seconds": time.perf_counter() - started, "ttft": ttft, "text": text}),
          flush=True)
