"""Converts a sentence-transformers BERT folder to an F16 GGUF that llama.cpp embeds with.

Usage: python3 bert_to_gguf.py MODEL_DIR OUT.gguf NAME

MODEL_DIR holds `config.json`, `model.safetensors`, `tokenizer.json` and `1_Pooling/config.json`
(the layout of `sentence-transformers/all-MiniLM-L6-v2`); NAME goes into `general.name`.
Needs only `gguf` (0.19.0), `safetensors` (0.8.0) and numpy: llama.cpp's own
`convert_hf_to_gguf.py` imports torch and transformers, and torch from PyPI pulls CUDA.

It writes what that script writes for a `BertModel`: the hyperparameters, the pooling the
sentence-transformers folder declares, the WordPiece vocabulary in llama.cpp's "phantom space"
form (a word start gets U+2581, a `##` continuation loses its `##`, bracketed tokens stay as they
are), the special tokens, and the tensors with 2-D weights in F16 (biases, norms and the
position and token-type tables in F32). The output depends only on the input files and NAME, so
its sha256 can be pinned.
"""

import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

# Tensors sentence-transformers keeps but llama.cpp's BERT graph does not use.
SKIPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def read_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def pooling_type(model_dir):
    pooling = read_json(model_dir / "1_Pooling" / "config.json")
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    sys.exit(f"unsupported pooling in {model_dir}/1_Pooling/config.json: {pooling}")


def add_hyperparameters(writer, model_dir, name):
    hp = read_json(model_dir / "config.json")
    if hp.get("model_type") != "bert":
        sys.exit(f"not a BERT model: model_type {hp.get('model_type')!r}")
    writer.add_name(name)
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_block_count(hp["num_hidden_layers"])
    writer.add_head_count(hp["num_attention_heads"])
    writer.add_layer_norm_eps(hp["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling_type(model_dir))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_token_type_count(hp.get("type_vocab_size", 1))
    return hp["num_hidden_layers"]


def phantom(token):
    """llama.cpp's BERT vocabulary form (convert_hf_to_gguf.py, BertModel.set_vocab)."""
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def add_vocabulary(writer, model_dir):
    tokenizer = read_json(model_dir / "tokenizer.json")
    vocab = tokenizer["model"]["vocab"]
    tokens = [None] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    if any(token is None for token in tokens):
        sys.exit("tokenizer.json's vocabulary has gaps")
    special = {added["content"] for added in tokenizer["added_tokens"] if added.get("special")}
    types = [gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token in tokens]
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("bert-bge")
    writer.add_token_list([phantom(token) for token in tokens])
    writer.add_token_types(types)
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(writer)


def add_tensors(writer, model_dir, n_layers):
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    tensors = load_file(model_dir / "model.safetensors")
    for name in sorted(tensors):
        short = name.removeprefix("bert.")
        if short in SKIPPED:
            continue
        new_name = names.get_name(short, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            sys.exit(f"unmapped tensor {name}")
        tensor = tensors[name]
        half = tensor.ndim == 2 and not new_name.startswith(("token_types", "position_embd"))
        writer.add_tensor(new_name, tensor.astype(np.float16 if half else np.float32))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_dir, out, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    writer = gguf.GGUFWriter(out, "bert")
    n_layers = add_hyperparameters(writer, model_dir, name)
    add_vocabulary(writer, model_dir)
    add_tensors(writer, model_dir, n_layers)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
