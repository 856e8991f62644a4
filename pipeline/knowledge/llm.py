"""Answer providers: an OpenAI-compatible chat model, or honest extraction.

``openai`` streams a chat completion (``stream: true``; the reply arrives as
server-sent events, ``data: {json}`` lines ending with ``data: [DONE]``) and
calls ``on_delta(text_so_far)`` as text arrives, so the task can publish the
partial answer as progress. Rate limits, server errors and timeouts raise
TransientError (the task is retried); other 4xx raise PermanentError carrying
the provider's message.

``extractive`` is what runs when no model is configured: it quotes the best
passages with citations and says plainly that no language model was used. It
never phrases anything as if a model had written it.
"""

from __future__ import annotations

import abc
import json
import re
import socket
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import requests
import urllib3

from pipeline.errors import PermanentError, TransientError
from pipeline.knowledge import http
from pipeline.knowledge.chunking import detect_script
from pipeline.knowledge.config import KnowledgeSettings, get_knowledge_settings

OnDelta = Callable[[str], None]


@dataclass
class Passage:
    """A knowledge-base excerpt offered as evidence, cited as [number]."""

    number: int
    title: str
    text: str


@dataclass
class Turn:
    """An earlier message of the conversation."""

    role: str
    content: str


@dataclass
class Reply:
    text: str
    provider: str
    model: Optional[str]
    usage: dict = field(default_factory=dict)


class Provider(abc.ABC):
    name: str
    model: Optional[str] = None

    @abc.abstractmethod
    def answer(self, question: str, history: Sequence[Turn], passages: Sequence[Passage], on_delta: OnDelta) -> Reply:
        """Answer ``question``; call ``on_delta`` with the whole text so far whenever it grows."""


# --------------------------------------------------------------------------- openai

SYSTEM_PROMPT = (
    "You are the assistant of a software product. Reply in the language of the user's question, concisely."
)
GROUNDING_PROMPT = (
    "Answer from the numbered knowledge-base passages below and cite the ones you use like [1]. "
    "If they do not contain the answer, say that the knowledge base does not cover it instead of guessing.\n\n"
)


def build_messages(question: str, history: Sequence[Turn], passages: Sequence[Passage]) -> list[dict]:
    """Chat messages: instructions (+ passages), the earlier turns, then the question."""
    system = SYSTEM_PROMPT
    if passages:
        system += "\n\n" + GROUNDING_PROMPT + "\n\n".join(f"[{p.number}] {p.title}\n{p.text}" for p in passages)
    return [
        {"role": "system", "content": system},
        *({"role": turn.role, "content": turn.content} for turn in history),
        {"role": "user", "content": question},
    ]


class OpenAIChatProvider(Provider):
    """Streaming ``POST {url}/chat/completions`` against any OpenAI-compatible server."""

    name = "openai"

    def __init__(self, url: str, model: str, key=None, timeout: float = 60.0, max_tokens: int = 800,
                 temperature: float = 0.2):
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.key = key
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.temperature = temperature

    def answer(self, question: str, history: Sequence[Turn], passages: Sequence[Passage], on_delta: OnDelta) -> Reply:
        body = {
            "model": self.model,
            "messages": build_messages(question, history, passages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        what = f"LLM provider {self.url}"
        response = http.send(
            lambda: requests.post(
                self.url,
                json=body,
                headers={**http.auth_headers(self.key), "Accept": "text/event-stream"},
                stream=True,
                timeout=(min(10.0, self.timeout), self.timeout),
            ),
            what,
        )
        with response:
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                return self._whole(response, what, on_delta)
            return self._stream(response, what, on_delta)

    def _stream(self, response: requests.Response, what: str, on_delta: OnDelta) -> Reply:
        text, usage, model = "", {}, self.model
        for event in _sse_data(response, what):
            if event == "[DONE]":
                return Reply(text, self.name, model, usage)
            try:
                payload = json.loads(event)
            except ValueError:
                raise TransientError(f"{what} sent a malformed stream event: {event[:200]!r}") from None
            if payload.get("error"):
                error = payload["error"]
                raise TransientError(f"{what} failed mid-stream: {error.get('message', error) if isinstance(error, dict) else error}")
            model = payload.get("model") or model
            usage = payload.get("usage") or usage
            for choice in payload.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    text += delta
                    on_delta(text)
        raise TransientError(f"{what} closed the stream before [DONE] ({len(text)} characters received)")

    def _whole(self, response: requests.Response, what: str, on_delta: OnDelta) -> Reply:
        """Servers that ignore ``stream`` answer with one JSON body."""
        try:
            payload = response.json()
            text = payload["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise PermanentError(f"{what} sent an unexpected body ({exc.__class__.__name__}: {exc})") from None
        on_delta(text)
        return Reply(text, self.name, payload.get("model") or self.model, payload.get("usage") or {})


def _sse_data(response: requests.Response, what: str) -> Iterator[str]:
    """The ``data`` field of each server-sent event, as soon as its line arrives.

    Reads with ``read1`` so lines are handed over as they come, whether the
    server uses chunked encoding or not (``iter_lines`` waits for a full buffer
    on unchunked streams).
    """
    buffer = b""
    data: list[str] = []
    try:
        while True:
            block = response.raw.read1(8192)
            if not block:
                break
            buffer += block
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.rstrip(b"\r").decode("utf-8")
                if line == "":
                    if data:
                        yield "\n".join(data)
                    data = []
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
    except (urllib3.exceptions.HTTPError, socket.timeout, OSError) as exc:
        raise TransientError(f"{what} stream broke off: {exc.__class__.__name__}: {exc}") from None
    if data:
        yield "\n".join(data)


# --------------------------------------------------------------------------- extractive

_TEXTS = {
    "latin": {
        "intro": "No language model is configured, so this reply was not written by one. "
                 "These are the knowledge-base passages that best match your question:",
        "no_passages": "No language model is configured, so no answer can be composed, and no knowledge-base "
                       "passage matches this question.",
        "no_base": "No language model is configured and no knowledge base was given, so there is nothing to "
                   "answer from.",
    },
    "cjk": {
        "intro": "当前没有配置语言模型，这条回复不是由模型生成的。以下是知识库中与你的问题最相关的段落：",
        "no_passages": "当前没有配置语言模型，无法组织回答；知识库中也没有与这个问题相关的段落。",
        "no_base": "当前没有配置语言模型，也没有指定知识库，因此无法回答。",
    },
}
EXCERPT_CHARS = 400
# A sentence with the spaces after it: up to 。！？；!?; or a full stop before a space.
_SENTENCE = re.compile(r".+?(?:[。！？；!?;]|\.(?=\s)|$)\s*")


class ExtractiveProvider(Provider):
    """Quotes and cites the best passages; states that no model was involved."""

    name = "extractive"

    def __init__(self, has_knowledge_base: bool = True):
        self.has_knowledge_base = has_knowledge_base

    def answer(self, question: str, history: Sequence[Turn], passages: Sequence[Passage], on_delta: OnDelta) -> Reply:
        texts = _TEXTS["cjk" if detect_script(question) == "cjk" else "latin"]
        if not self.has_knowledge_base:
            text = texts["no_base"]
        elif not passages:
            text = texts["no_passages"]
        else:
            quotes = [f"[{p.number}] {p.title}\n> {excerpt(p.text)}" for p in passages]
            text = "\n\n".join([texts["intro"], *quotes])
        on_delta(text)
        return Reply(text, self.name, None, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The passage on one line without headings, cut after the last whole sentence that fits in ``limit``."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    flat = " ".join(lines) or text.strip()
    if len(flat) <= limit:
        return flat
    kept = ""
    for sentence in _SENTENCE.findall(flat):
        if len(kept) + len(sentence) > limit:
            break
        kept += sentence
    return kept.strip() or flat[:limit].rstrip() + "…"


def get_provider(has_knowledge_base: bool, settings: Optional[KnowledgeSettings] = None) -> Provider:
    """The provider the settings select (extractive when no CLAW_LLM_URL is set)."""
    settings = settings or get_knowledge_settings()
    if settings.resolved_llm_provider == "openai":
        return OpenAIChatProvider(
            settings.llm_url,
            settings.llm_model,
            key=settings.llm_key,
            timeout=settings.llm_timeout_seconds,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )
    return ExtractiveProvider(has_knowledge_base)
