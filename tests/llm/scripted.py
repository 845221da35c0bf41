"""A real OpenAI-compatible HTTP server with scripted answers, and a tiny causal LM, for the tests.

:class:`ScriptedLLM` serves ``POST /v1/chat/completions`` under uvicorn in a thread on a free
loopback port. Each request takes the next queued :class:`Answer` (or asks ``responder`` when
the queue is empty) and is recorded, body and headers, so tests assert on what left the process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.llm.prompts import PROMPTS_DIR


@dataclass
class Answer:
    """One scripted answer: a reply text (status 200) or an error status, after ``delay`` s."""

    content: str = ""
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def reply(value: Any) -> Answer:
    """A 200 answer whose content is ``value`` as JSON (or the text itself)."""
    return Answer(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


class ScriptedLLM:
    """The scripted server's state: the answer queue and every request received."""

    def __init__(self) -> None:
        self.url = ""
        self.queue: deque[Answer] = deque()
        self.responder: Callable[[dict[str, Any]], Answer] | None = None
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def push(self, *answers: Answer | str | dict[str, Any]) -> None:
        for answer in answers:
            self.queue.append(answer if isinstance(answer, Answer) else reply(answer))

    def reset(self) -> None:
        self.queue.clear()
        self.responder = None
        self.requests.clear()
        self.headers.clear()

    def sent_text(self) -> str:
        """Every message content of every request received, joined."""
        return "\n".join(m["content"] for body in self.requests for m in body["messages"])

    def app(self) -> Any:
        # Plain Starlette: FastAPI cannot resolve the postponed annotations of a local handler.
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def complete(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            if self.queue:
                answer = self.queue.popleft()
            elif self.responder is not None:
                answer = self.responder(body)
            else:
                answer = Answer(status=500, content="the test script has no answer left")
            if answer.delay:
                await asyncio.sleep(answer.delay)
            if answer.status != 200:
                return JSONResponse(
                    {"error": {"message": answer.content}}, answer.status, answer.headers
                )
            return JSONResponse(_completion(body, answer.content))

        return Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])


def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    prompt = sum(len(m["content"]) for m in body["messages"])
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": len(content)},
    }


@contextmanager
def serve(llm: ScriptedLLM) -> Iterator[ScriptedLLM]:
    """Run ``llm``'s app under uvicorn on a free loopback port until the block ends."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(llm.app(), lifespan="off", ws="none", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the scripted LLM server did not start")
        time.sleep(0.02)
    llm.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield llm
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def build_tiny_lm(directory: Path, chat_template: bool) -> Path:
    """A tiny Llama with random weights and a character-level tokenizer over ASCII and every
    character of the prompt files, saved to ``directory`` (nothing is downloaded)."""
    import tokenizers
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    text = "".join(p.read_text("utf-8") for p in PROMPTS_DIR.glob("*.yaml"))
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for char in sorted(set(string.printable) | set(text)):
        vocab.setdefault(char, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(tokenizers.Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=16384,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory
