"""The Python peer of the model benchmarks: one measured run of sentence-transformers (embeddings)
or transformers' `generate` (text generation), printing one JSON line in the shape our bench
binaries print (`embed_bench --texts`, `generate_bench --prompt`), so that `compare.py` can set
them side by side.

  python peer.py embed    --model DIR --texts FILE --batches 32,128 [--device cpu|cuda] [--dtype f32|f16]
                          [--repeat K] [--vectors PREFIX] [--threads N]
  python peer.py generate --model DIR --prompt TEXT --new-tokens N [--device ...] [--dtype ...]
                          [--repeat K] [--threads N]

Timing covers what a caller of the library waits for: tokenising, sorting by length (done by
sentence-transformers itself), the forward passes, pooling and normalising; for generation, the
time to the first new token (prefill) and from there to the last one (decode). Model loading
and one warm-up call per batch size are not timed.
"""

import argparse
import json
import sys
import time


def threads(n):
    import torch

    if n:
        torch.set_num_threads(n)
        # The interop pool is fixed after the first parallel op; set it before any runs.
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass


def sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def gpu_peak(device):
    import torch

    return torch.cuda.max_memory_allocated() if device.startswith("cuda") else None


def embed(args):
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    threads(args.threads)
    started = time.perf_counter()
    model = SentenceTransformer(args.model, device=args.device)
    if args.dtype == "f16":
        model.half()
    load_s = time.perf_counter() - started
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    runs = []
    for batch in [int(b) for b in args.batches.split(",")]:
        with torch.inference_mode():
            model.encode(texts[:batch], batch_size=batch, normalize_embeddings=True)  # warm-up
            seconds = []
            for _ in range(args.repeat):
                sync(args.device)
                t0 = time.perf_counter()
                vectors = model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
                sync(args.device)
                seconds.append(time.perf_counter() - t0)
        if args.vectors:
            np.asarray(vectors, dtype="<f4").tofile(f"{args.vectors}-b{batch}.f32")
        runs.append({"batch": batch, "seconds": seconds})
    tokens = sum(len(e) for e in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"])
    out = {
        "side": "theirs",
        "impl": f"sentence-transformers {__import__('sentence_transformers').__version__}, torch {torch.__version__}",
        "device": args.device,
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "sentences": len(texts),
        "tokens": tokens,
        "dimensions": int(vectors.shape[1]),
        "load_seconds": load_s,
        "runs": runs,
        "gpu_peak_bytes": gpu_peak(args.device),
    }
    print(json.dumps(out), flush=True)


class FirstTokenClock:
    """A `generate` streamer that notes when the first new token arrives (the end of prefill)."""

    def __init__(self):
        self.calls = 0
        self.first = None

    def put(self, value):
        self.calls += 1
        if self.calls == 2:  # call 1 is the prompt, call 2 the first new token
            value.cpu()  # wait for the GPU: the token exists only once this returns
            self.first = time.perf_counter()

    def end(self):
        pass


def generate(args):
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    threads(args.threads)
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(args.device).eval()
    load_s = time.perf_counter() - started
    tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    ids = tok.encode(args.prompt, add_special_tokens=True).ids
    input_ids = torch.tensor([ids], device=args.device)
    attention = torch.ones_like(input_ids)
    n = args.new_tokens
    settings = dict(
        do_sample=False,
        max_new_tokens=n,
        min_new_tokens=n,
        num_beams=1,
        pad_token_id=0,
        eos_token_id=None,
        attention_mask=attention,
        temperature=None,
        top_p=None,
        top_k=None,
    )
    runs = []
    with torch.inference_mode():
        model.generate(input_ids, **{**settings, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        for _ in range(args.repeat):
            clock = FirstTokenClock()
            sync(args.device)
            t0 = time.perf_counter()
            out = model.generate(input_ids, streamer=clock, **settings)
            sync(args.device)
            t1 = time.perf_counter()
            runs.append({"prefill_seconds": clock.first - t0, "decode_seconds": t1 - clock.first})
    generated = out[0, len(ids) :].tolist()
    print(
        json.dumps(
            {
                "side": "theirs",
                "impl": f"transformers {__import__('transformers').__version__} generate, torch {torch.__version__}",
                "device": args.device,
                "dtype": args.dtype,
                "threads": torch.get_num_threads(),
                "prompt_tokens": len(ids),
                "generated_tokens": len(generated),
                "load_seconds": load_s,
                "runs": runs,
                "tokens": generated,
                "gpu_peak_bytes": gpu_peak(args.device),
            }
        ),
        flush=True,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("embed", "generate"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--device", default="cpu")
        s.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
        s.add_argument("--repeat", type=int, default=1)
        s.add_argument("--threads", type=int, default=0)
    e = sub.choices["embed"]
    e.add_argument("--texts", required=True)
    e.add_argument("--batches", default="32")
    e.add_argument("--vectors")
    g = sub.choices["generate"]
    g.add_argument("--prompt", required=True)
    g.add_argument("--new-tokens", type=int, default=128)
    args = p.parse_args()
    {"embed": embed, "generate": generate}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
