"""Embeddings through the official `openai` Python package, as any OpenAI caller would ask.

Run by the Rust test `embeddings` with OPENAI_BASE_URL=<grid>/v1 and OPENAI_API_KEY set, and
SGL_E2E_EMBEDDING_MODEL naming the served embedding model. Embeds two paraphrases and an
unrelated sentence with the SDK's default request (it asks for base64 and decodes it), the
first again as floats, and asks for a width the model does not make; asserts on each and prints
one JSON summary line on stdout. A failed assertion exits non-zero with its traceback on stderr.
"""

import json
import math
import os
import struct

import openai
from openai import OpenAI

TEXTS = [
    "A man is playing a guitar on the stage.",
    "Someone is performing music with a guitar in front of an audience.",
    "The central bank raised interest rates by half a percent.",
]


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def as_f32(vector):
    return [struct.unpack("<f", struct.pack("<f", x))[0] for x in vector]


def main() -> None:
    # No SDK retries: a retried request would hide a failure and could be billed twice.
    client = OpenAI(max_retries=0, timeout=300)
    model = os.environ["SGL_E2E_EMBEDDING_MODEL"]
    listed = [m.id for m in client.models.list()]
    assert model in listed, f"{model} not in {listed}"

    result = client.embeddings.create(model=model, input=TEXTS)
    assert [d.index for d in result.data] == [0, 1, 2], result.data
    vectors = [d.embedding for d in result.data]
    dimensions = len(vectors[0])
    assert all(len(v) == dimensions for v in vectors), [len(v) for v in vectors]
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-3 for v in vectors), "unit vectors"
    assert result.usage.prompt_tokens > len(TEXTS), result.usage
    assert result.usage.total_tokens == result.usage.prompt_tokens, result.usage
    assert result.model == model, result.model
    paraphrase, unrelated = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
    assert paraphrase > unrelated, f"paraphrase {paraphrase} <= unrelated {unrelated}"
    assert cosine(vectors[1], vectors[0]) > cosine(vectors[1], vectors[2])

    floats = client.embeddings.create(model=model, input=TEXTS[0], encoding_format="float")
    assert as_f32(floats.data[0].embedding) == as_f32(vectors[0]), "float and base64 carry the same float32 values"

    try:
        client.embeddings.create(model=model, input=TEXTS[0], dimensions=dimensions // 2)
        raise AssertionError("a width the model does not make was served")
    except openai.BadRequestError as error:
        refusal = {"status": error.status_code, "param": error.body.get("param"), "message": error.body.get("message")}

    print(json.dumps({
        "dimensions": dimensions,
        "paraphrase": paraphrase,
        "unrelated": unrelated,
        "prompt_tokens": result.usage.prompt_tokens,
        "float_prompt_tokens": floats.usage.prompt_tokens,
        "refusal": refusal,
    }))


if __name__ == "__main__":
    main()
