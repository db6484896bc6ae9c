"""`python -m mprtune.serve.app CONFIG --fd N`: LLaMA-Factory's API server, as `llamafactory-cli api` runs it.

Same ChatModel, same FastAPI app (`llamafactory.api.app.create_app`: /v1/models, /v1/chat/completions,
API_KEY and API_MODEL_NAME from the environment), served by uvicorn. Three differences, each so the
server answers like the predictions `compare` scored, and stays up under bad requests:

- it serves on a socket the parent already bound (passed as file descriptor N): "port in use" is
  found before a model loads, and port 0 gets a free port without a race;
- answers are decoded like LLaMA-Factory's predict path decodes them (the tokenizer's own
  `clean_up_tokenization_spaces`; the chat engine forces it on, which turns "do n't ." into "don't.");
- a request guard answers 400 with a readable message for empty messages and out-of-range max_tokens
  (LLaMA-Factory passes any max_tokens to generate: a huge one blocks its single generation slot).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 4 * 2**20
CHAT_PATH = "/v1/chat/completions"


def request_problem(body: Any, max_tokens_limit: int) -> str | None:
    """Why a chat-completion request is refused, or None. Mutates `body` only to map OpenAI aliases."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list of {role, content} objects"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            return f"messages[{i}] must be an object with a role"
    # Newer OpenAI clients send max_completion_tokens; LLaMA-Factory only reads max_tokens and would
    # silently ignore it.
    if body.get("max_tokens") is None and body.get("max_completion_tokens") is not None:
        body["max_tokens"] = body.pop("max_completion_tokens")
    limit = body.get("max_tokens")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_tokens_limit
    ):
        return f"max_tokens must be an integer from 1 to {max_tokens_limit}, got {json.dumps(limit)}"
    return None


class RequestGuard:
    """ASGI middleware in front of LLaMA-Factory's app: validates chat requests that passed the key check."""

    def __init__(self, app: Any, max_tokens_limit: int, api_key: str | None) -> None:
        self.app = app
        self.max_tokens_limit = max_tokens_limit
        self.api_key = api_key

    def _authorized(self, scope: Scope) -> bool:
        if not self.api_key:
            return True
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), self.api_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path") != CHAT_PATH
            or not self._authorized(scope)
        ):  # unauthorized: LLaMA-Factory answers 401 itself
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _error(send, 413, f"request body larger than {MAX_BODY_BYTES // 2**20} MiB")
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            await _error(send, 400, "request body is not valid JSON")
            return
        problem = request_problem(body, self.max_tokens_limit)
        if problem:
            await _error(send, 400, problem)
            return
        replay = json.dumps(body).encode()
        sent = False

        async def replay_receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": replay, "more_body": False}

        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(replay)).encode()))
        await self.app({**scope, "headers": headers}, replay_receive, send)


async def _error(send: Send, status: int, message: str) -> None:
    """An OpenAI-shaped error body, so the openai client shows `message`."""
    payload = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def decode_like_predict(chat_model: Any) -> None:
    """Make the chat engine decode with the tokenizer's own clean-up setting, as predict does."""
    tokenizer = getattr(chat_model.engine, "tokenizer", None)
    if tokenizer is None:  # vLLM/SGLang engines decode on their own
        return
    setting = bool(getattr(tokenizer, "clean_up_tokenization_spaces", False))
    original = tokenizer.batch_decode

    def batch_decode(*args: Any, **kwargs: Any) -> Any:
        kwargs["clean_up_tokenization_spaces"] = setting
        return original(*args, **kwargs)

    tokenizer.batch_decode = batch_decode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mprtune.serve.app")
    parser.add_argument("config")
    parser.add_argument("--fd", type=int, required=True, help="a bound, listening TCP socket")
    parser.add_argument("--max-tokens-limit", type=int, required=True)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)

    import uvicorn
    from llamafactory.api.app import create_app
    from llamafactory.chat import ChatModel

    with open(args.config, encoding="utf-8") as handle:
        settings = yaml.safe_load(handle)
    chat_model = ChatModel(settings)
    decode_like_predict(chat_model)
    app = RequestGuard(create_app(chat_model), args.max_tokens_limit, os.environ.get("API_KEY") or None)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
