"""Makes model folders with random weights from a fixed seed, in the shape of real models, so that
the benchmarks run where no weights can be downloaded (the lent GPU machine has no network) and
both sides load the very same weights:

  python make_models.py minilm  OUT --like DIR   BERT weights in the shape of DIR's config.json;
                                                 DIR's tokenizer and sentence-transformers files
                                                 are copied (they are small and travel)
  python make_models.py smollm2 OUT               Llama weights in SmolLM2-135M's shape
  python make_models.py llama1b OUT               Llama weights in TinyLlama-1.1B's shape

  [--seed N] [--dtype f32|f16] [--device cpu|cuda]

Llama folders get a word-level tokenizer (`t0` .. `tN`, one token per word, no special tokens),
so a prompt "t1 t2 t3" is the ids [1, 2, 3] on both sides. Weights are saved as
`model.safetensors` with `config.json` (transformers' `save_pretrained`). A folder that already
holds the same shape and seed (`.made` stamp) is kept.
"""

import argparse
import json
import os
import shutil
import sys

SMOLLM2_135M = dict(
    hidden_size=576,
    intermediate_size=1536,
    vocab_size=49152,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    max_position_embeddings=8192,
    tie_word_embeddings=True,
    bos_token_id=None,
    eos_token_id=None,
)
TINYLLAMA_1B = dict(
    hidden_size=2048,
    intermediate_size=5632,
    vocab_size=32000,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    max_position_embeddings=2048,
    tie_word_embeddings=False,
    bos_token_id=None,
    eos_token_id=None,
)
SENTENCE_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentence_bert_config.json",
    "modules.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
]


def word_tokenizer(vocab_size):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {f"t{i}": i for i in range(vocab_size)}, "unk_token": "t0"},
    }


def stamp_of(kind, args, extra):
    return json.dumps({"kind": kind, "seed": args.seed, "dtype": args.dtype, **extra}, sort_keys=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["minilm", "smollm2", "llama1b"])
    p.add_argument("out")
    p.add_argument("--like", help="minilm: the folder whose config and tokenizer to use")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    if args.kind == "minilm":
        if not args.like:
            p.error("minilm needs --like DIR (a folder with all-MiniLM-L6-v2's config and tokenizer)")
        with open(os.path.join(args.like, "config.json")) as f:
            shape = json.load(f)
    else:
        shape = SMOLLM2_135M if args.kind == "smollm2" else TINYLLAMA_1B
    stamp = stamp_of(args.kind, args, shape)
    stamp_file = os.path.join(args.out, ".made")
    if os.path.exists(stamp_file) and open(stamp_file).read() == stamp:
        print(f"make_models: {args.out} is up to date", file=sys.stderr)
        return 0

    import torch
    import transformers

    torch.manual_seed(args.seed)
    dtype = {"f32": torch.float32, "f16": torch.float16}[args.dtype]
    os.makedirs(args.out, exist_ok=True)
    with torch.device(args.device):
        if args.kind == "minilm":
            config = transformers.BertConfig(**{k: v for k, v in shape.items() if k != "architectures"})
            model = transformers.BertModel(config, add_pooling_layer=False)
        else:
            config = transformers.LlamaConfig(**shape)
            model = transformers.LlamaForCausalLM(config)
    model = model.to(dtype).eval()
    model.save_pretrained(args.out, safe_serialization=True)
    if args.kind == "minilm":
        # The original config.json too: same shape, and the fields candle reads as they were.
        for name in ["config.json"] + SENTENCE_FILES:
            src = os.path.join(args.like, name)
            if os.path.exists(src):
                os.makedirs(os.path.dirname(os.path.join(args.out, name)), exist_ok=True)
                shutil.copyfile(src, os.path.join(args.out, name))
    else:
        # Newer transformers write some fields differently (rope settings): keep the plain
        # top-level ones too, which candle's LlamaConfig reads.
        path = os.path.join(args.out, "config.json")
        with open(path) as f:
            saved = json.load(f)
        with open(path, "w") as f:
            json.dump({**saved, **{k: v for k, v in shape.items() if v is not None}}, f, indent=1)
        with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
            json.dump(word_tokenizer(shape["vocab_size"]), f)
    with open(stamp_file, "w") as f:
        f.write(stamp)
    params = sum(t.numel() for t in model.parameters())
    print(f"make_models: {args.kind} ({params / 1e6:.1f} M parameters, {args.dtype}) in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
