"""The grid through the official `openai` Python package, as any OpenAI caller would use it.

Run by the Rust test `openai_compat` with OPENAI_BASE_URL=<grid>/v1 and OPENAI_API_KEY set (and
SGL_E2E_MODEL naming the served model). Lists the models, makes a non-stream chat completion and
a streamed one (with usage), asserts on each, and prints one JSON summary line on stdout. A
failed assertion exits non-zero with its traceback on stderr.
"""

import json
import os
import sys

from openai import OpenAI


def main() -> None:
    # No SDK retries: a retried request would hide a failure and could be billed twice.
    client = OpenAI(max_retries=0, timeout=300)
    models = [model.id for model in client.models.list()]
    assert models, "GET /v1/models listed no model"
    model = os.environ.get("SGL_E2E_MODEL") or models[0]
    assert model in models, f"{model} not in {models}"
    messages = [{"role": "user", "content": "Count from one to ten."}]

    completion = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0)
    choice = completion.choices[0]
    assert isinstance(choice.message.content, str), f"content is {choice.message.content!r}"
    assert choice.message.role == "assistant", choice.message.role
    assert choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason!r}"
    assert completion.usage is not None, "no usage"
    assert completion.usage.prompt_tokens > 0, completion.usage
    assert 0 < completion.usage.completion_tokens <= 12, completion.usage
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks, pieces, finish, usage, stream_id = 0, [], None, None, None
    for chunk in stream:
        chunks += 1
        stream_id = chunk.id
        if chunk.usage is not None:
            usage = chunk.usage
        for part in chunk.choices:
            if part.delta.content:
                pieces.append(part.delta.content)
            if part.finish_reason:
                finish = part.finish_reason
    text = "".join(pieces)
    assert chunks >= 3, f"only {chunks} chunks"
    assert text, "the stream carried no content"
    assert finish in ("stop", "length"), f"stream finish_reason {finish!r}"
    assert usage is not None and 0 < usage.completion_tokens <= 24, f"stream usage {usage!r}"

    print(json.dumps({
        "models": models,
        "completion_id": completion.id,
        "completion_tokens": completion.usage.completion_tokens,
        "finish_reason": choice.finish_reason,
        "stream_id": stream_id,
        "stream_chunks": chunks,
        "stream_text_chars": len(text),
        "stream_completion_tokens": usage.completion_tokens,
        "stream_finish_reason": finish,
    }))


if __name__ == "__main__":
    try:
        main()
    except AssertionError:
        import traceback

        traceback.print_exc()
        sys.exit(1)
