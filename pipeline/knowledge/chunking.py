"""Splitting documents into chunks sized in the embedder's own tokens.

semantic-text-splitter cuts at the largest semantic unit that fits (section,
paragraph, sentence, word), using Unicode sentence boundaries, so Chinese text
without spaces is split after 。！？ rather than mid-word. Sizing by the
embedder's tokenizer keeps each chunk inside what the model actually reads;
the overlap repeats the end of one chunk at the start of the next so a fact
straddling a boundary is still found.

Each chunk is also tagged with its script (cjk / latin / other), which the
ranking uses to compare each candidate against its own language's baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from semantic_text_splitter import MarkdownSplitter, TextSplitter

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    token_count: int
    script: str


def detect_script(text: str) -> str:
    """'cjk' or 'latin' by which carries more of the text, 'other' when neither appears.

    One CJK character is weighed like one Latin word: both are roughly a
    morpheme, so a Chinese paragraph quoting a few English terms stays 'cjk'.
    """
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    if cjk == 0 and latin == 0:
        return "other"
    return "cjk" if cjk >= latin else "latin"


def split(
    text: str,
    token_count: Callable[[str], int],
    max_tokens: int,
    overlap: int,
    markdown: bool = False,
) -> list[Chunk]:
    """Chunks of at most ``max_tokens`` tokens (as counted by ``token_count``), in reading order."""
    splitter_class = MarkdownSplitter if markdown else TextSplitter
    splitter = splitter_class.from_callback(token_count, max_tokens, overlap=overlap)
    pieces = [piece for piece in splitter.chunks(text) if piece.strip()]
    return [Chunk(i, piece, token_count(piece), detect_script(piece)) for i, piece in enumerate(pieces)]


def is_markdown(source: str) -> bool:
    return source.lower().endswith(MARKDOWN_SUFFIXES)
