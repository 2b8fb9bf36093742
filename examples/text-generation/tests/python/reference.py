"""Reference renderings and tokenizations from the Python peers, for the Rust tests.

python reference.py template-dir DIR MESSAGES_JSON
    transformers' apply_chat_template with AutoTokenizer.from_pretrained(DIR).
python reference.py template-gguf FILE MESSAGES_JSON
    transformers' apply_chat_template on the template and special tokens the `gguf` package
    reads from FILE (transformers' own gguf_file= loading needs torch, see the README).

Each prints one JSON value.
"""

import json
import sys

mode, path, arg = sys.argv[1], sys.argv[2], sys.argv[3]

if mode.startswith("template"):
    messages = json.loads(arg)
    if mode == "template-dir":
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
    else:
        from gguf import GGUFReader
        from tokenizers import Tokenizer, models
        from transformers import PreTrainedTokenizerFast

        fields = GGUFReader(path).fields
        tokens = fields["tokenizer.ggml.tokens"].contents()
        tok = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer(models.WordLevel({"x": 0}, unk_token="x")),
            bos_token=tokens[fields["tokenizer.ggml.bos_token_id"].contents()],
            eos_token=tokens[fields["tokenizer.ggml.eos_token_id"].contents()],
            chat_template=fields["tokenizer.chat_template"].contents(),
        )
    print(json.dumps({
        str(gen): tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        for gen in (True, False)
    }))
else:
    sys.exit(f"unknown mode {mode}")
