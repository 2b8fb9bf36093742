# Independent reference for all-MiniLM-L6-v2 sentence embeddings: numpy BERT forward pass from
# model.safetensors + transformers' pure-Python BertTokenizer (vocab.txt), mean pooling, L2 norm.
import sys, json, numpy as np
from safetensors.numpy import load_file
from transformers import BertTokenizer
from math import erf, sqrt
d = sys.argv[1]
cfg = json.load(open(f"{d}/config.json"))
w = {k: v.astype(np.float64) for k, v in load_file(f"{d}/model.safetensors").items()}
tok = BertTokenizer(f"{d}/vocab.txt", do_lower_case=True)
H = cfg["hidden_size"]; nh = cfg["num_attention_heads"]; hd = H // nh; eps = cfg["layer_norm_eps"]
gelu = np.vectorize(lambda x: 0.5 * x * (1.0 + erf(x / sqrt(2.0))))
def ln(x, p): m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True); return (x - m) / np.sqrt(v + eps) * w[p + ".weight"] + w[p + ".bias"]
def lin(x, p): return x @ w[p + ".weight"].T + w[p + ".bias"]
def embed(text):
    ids = tok(text)["input_ids"]; n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q, k, v = (lin(x, p + "attention.self." + t).reshape(n, nh, hd).transpose(1, 0, 2) for t in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / sqrt(hd); s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, H)
        x = ln(lin(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        x = ln(lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense") + x, p + "output.LayerNorm")
    e = x.mean(0); return ids, e / np.linalg.norm(e)
for t in sys.argv[2:]:
    ids, e = embed(t)
    print(json.dumps({"text": t, "ids": ids, "prefix": [round(float(v), 6) for v in e[:8]]}))
