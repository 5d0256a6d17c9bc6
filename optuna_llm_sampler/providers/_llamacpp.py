"""A local GGUF model run in-process by llama.cpp (``llama-cpp-python``), offline.

``LlamaCppClient()`` with no path runs the embedded default model, Qwen2.5-Coder-1.5B-Instruct
Q4_K_M, joined from its PyPI part packages and verified by SHA-256 on first use (see
:mod:`optuna_llm_sampler.providers._embedded`).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import functools
import json
import math
import os
from pathlib import Path
import random
import re
import sys
import threading
import time
from typing import Any
from typing import TYPE_CHECKING
import weakref

import optuna

from optuna_llm_sampler.providers import _embedded
from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError


if TYPE_CHECKING:
    from collections.abc import Iterator

    import llama_cpp


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

# Llama.__init__ offers no switch for llama.cpp's extra weight buffers, so it is set by wrapping
# llama_model_default_params during construction; the lock keeps two constructions from racing.
_MODEL_PARAMS_LOCK = threading.Lock()


class LlamaCppClient:
    """An :class:`~optuna_llm_sampler.LLMClient` backed by a local GGUF model (llama.cpp).

    The model is loaded lazily on the first :meth:`complete` (or :meth:`load`) and kept for the
    life of the client: llama.cpp then reuses the evaluated KV cache for the unchanged prefix of
    the next prompt, so appending history in trial order is much cheaper than re-sorting it.
    Calls are serialized (a llama.cpp context is not thread-safe), so ``study.optimize(n_jobs=2)``
    works but does not run two generations at once.

    With ``schema`` the output is constrained to JSON matching the schema (a grammar built by
    llama.cpp from the schema: every answer parses, but ``minimum``/``maximum`` are not enforced,
    so values can still leave the range). Where every number of the schema has a ``multipleOf``
    of ``10**-d`` (the sampler's compact answers), the grammar writes at most ``d`` decimals, no
    exponent and no spaces (:func:`schema_grammar`): generation is the cost here (~0.1 s a
    token), and the compact answer of three two-parameter steps is ~27 tokens where the named
    JSON with a reason was ~97. Without a schema the answer is free text, optionally constrained
    by ``grammar``.

    Args:
        model_path: A GGUF file; ``None`` for the embedded model, which is joined into the cache
            directory and verified on first use (needs ``pip install ".[local]"``
            from the optuna-llm-sampler checkout).
        n_ctx: Context window in tokens (prompt plus answer), at least 512. 8192 holds about 200
            history lines with full-precision values (~38 tokens each).
        n_threads: Threads for generation and prompt evaluation. ``None`` uses half the usable
            cores (at least 1). Measured on 2 cores with the embedded model: 2 threads generate
            ~10 tokens/s when the machine is idle, 1 thread ~7; but with one core busy elsewhere
            (an objective running in parallel, other tests) 2 threads collapse to ~1–1.5
            tokens/s while 1 thread keeps ~7. Measured again on the compact answer
            (``benchmarks/local_model.py --part decoding``, calls alternating in one run, another
            process keeping one core busy, the machine shared): a median 6.3 s a call with 1
            thread against 50.2 s with 2 (ratio 0.13); without the busy process but other work
            on the machine (load ~8), 3.4 s against 56.8 s. Pass ``os.cpu_count()`` on an otherwise
            idle machine.
        seed: Seed of the first call; call ``i`` uses ``seed + i``, so a client replays the same
            answers to the same prompts. ``None`` draws a random seed per call.
        temperature: Sampling temperature (0 for greedy decoding). 0.7 by measurement on the
            compact prompt (``--part decoding``): as fast as greedy (1.19 s against 1.07 s a
            call), but 3 different answers in 3 calls where greedy gave 1, so a re-ask after a
            repeat can get a new answer.
        max_tokens: Most tokens generated per answer. Generation costs ~0.1 s per token on two
            cores, so keep answers short; an answer cut by this limit is logged.
        grammar: Optional GBNF grammar constraining answers to calls *without* a schema (calls
            with a schema are always constrained by the schema).
        chat_format: llama-cpp-python chat format name; ``None`` uses the chat template stored in
            the GGUF file (right for Qwen and most recent models).
        extra_buffers: Whether llama.cpp may repack weights into its extra buffer types (AMX,
            CPU repack). ``None`` turns them off on CPUs advertising Intel AMX, where llama.cpp
            was seen to crash (segmentation fault in the first decode), and on elsewhere:
            measured on this project's AVX-512 machine (no AMX), a compact call took 3.62 s with
            them against 3.91 s without (ratio 0.93, ``--part decoding``).
        verbose: Let llama.cpp print its load and timing logs to stderr.
        llama_kwargs: Further keyword arguments for ``llama_cpp.Llama`` (e.g. ``n_batch``,
            ``flash_attn``).

    Raises:
        ProviderConfigError: ``llama-cpp-python`` is not installed, ``model_path`` does not exist,
            or the embedded model's part packages are missing.
        ValueError: An argument is out of range.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.providers import Message
            from optuna_llm_sampler.providers import LlamaCppClient

            client = LlamaCppClient(n_threads=1, max_tokens=64)
            schema = {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            }
            question = [Message("user", "Propose a and b in [-7, 7].")]
            answer = client.complete(question, schema=schema)
            print(answer.text)  # {"a": 1.5, "b": -2.0}
    """

    supports_schema = True
    # The model runs in this process: LLMSampler(preset="auto") guides it (small local models
    # copy history rows when asked for absolute points).
    runs_locally = True

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        seed: int | None = 0,
        temperature: float = 0.7,
        max_tokens: int = 256,
        grammar: str | None = None,
        chat_format: str | None = None,
        extra_buffers: bool | None = None,
        verbose: bool = False,
        llama_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if n_ctx < 512:
            raise ValueError(f"n_ctx must be at least 512, got {n_ctx}.")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be positive or None, got {n_threads}.")
        if not temperature >= 0:
            raise ValueError(f"temperature must be non-negative, got {temperature}.")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}.")
        if max_tokens >= n_ctx:
            raise ValueError(f"max_tokens ({max_tokens}) must be smaller than n_ctx ({n_ctx}).")
        if grammar is not None and not grammar.strip():
            raise ValueError("grammar must be a non-empty GBNF grammar or None.")

        _import_llama_cpp()

        self._embedded = model_path is None
        if model_path is None:
            # Cheap check now (cached and verified, or every part installed); joining and
            # hashing 1.1 GB happen on the first call.
            _embedded.check_embedded_model()
            self._model_path: Path | None = None
            self.model = f"local:{_embedded.EMBEDDED_MODEL.model_id}"
        else:
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise ProviderConfigError(
                    f"Model file not found: {str(path)!r}. Pass the path of a GGUF file, or use "
                    "'local' for the embedded model."
                )
            self._model_path = path.resolve()
            self.model = f"local:{path.name}"

        self._n_ctx = n_ctx
        self._n_threads = n_threads if n_threads is not None else _default_threads()
        self._seed = seed
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._grammar_text = grammar
        self._chat_format = chat_format
        self._extra_buffers = extra_buffers if extra_buffers is not None else not _cpu_has_amx()
        self._verbose = verbose
        self._llama_kwargs = dict(llama_kwargs or {})
        self._llama: llama_cpp.Llama | None = None
        # Frees the model when the client is collected or, at the latest, at exit (before
        # interpreter teardown, where llama-cpp-python's own __del__ fails noisily).
        self._finalizer: weakref.finalize | None = None
        self._n_calls = 0
        self._load_lock = threading.Lock()
        self._call_lock = threading.Lock()

    @property
    def model_path(self) -> Path | None:
        """The GGUF file in use (for the embedded model: known once it has been prepared)."""
        return self._model_path

    @property
    def context_window(self) -> int:
        """Tokens the model reads and writes per call (``n_ctx``): the sampler's default
        history budget is a quarter of it."""
        return self._n_ctx

    @property
    def n_threads(self) -> int:
        """Threads llama.cpp uses."""
        return self._n_threads

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._llama is not None

    def load(self) -> None:
        """Prepare and load the model now instead of on the first call (e.g. to time it).

        Raises:
            ProviderConfigError: The embedded model cannot be assembled or verified, or llama.cpp
                cannot load the file.
        """
        self._get_llama()

    def close(self) -> None:
        """Free the model; the next call loads it again."""
        with self._call_lock, self._load_lock:
            self._llama = None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()

    def complete(
        self, messages: Sequence[Message], *, schema: dict[str, Any] | None = None
    ) -> Completion:
        """Answer ``messages``; with ``schema``, as JSON text matching it.

        The first call also loads the model (and, for the embedded model, may join and verify
        its parts first); its latency includes that.

        Raises:
            ProviderConfigError: The model cannot be prepared or loaded.
            ProviderError: llama.cpp failed, e.g. the prompt does not fit in ``n_ctx``.
        """
        start = time.perf_counter()
        chat: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        options: dict[str, Any] = {
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
        }
        if schema is not None:
            options["grammar"] = _grammar(schema_grammar(json.dumps(schema, sort_keys=True)))
        elif self._grammar_text is not None:
            options["grammar"] = _grammar(self._grammar_text)
        with self._call_lock:
            llama = self._get_llama()
            if self._seed is None:
                options["seed"] = random.randrange(2**31)
            else:
                options["seed"] = (self._seed + self._n_calls) % 2**31
            self._n_calls += 1
            try:
                response = llama.create_chat_completion(messages=chat, **options)
            except ValueError as e:
                if "exceed context window" in str(e):
                    raise ProviderError(
                        f"The prompt does not fit in the model's context window: {e}. Pass a "
                        "smaller history token budget to the sampler, or a larger n_ctx to the "
                        "client (n_ctx=16384 needs about 0.5 GB more memory)."
                    ) from e
                raise ProviderError(f"llama.cpp failed: {e}") from e
            except Exception as e:
                raise ProviderError(f"llama.cpp failed: {type(e).__name__}: {e}") from e
        latency = time.perf_counter() - start
        if not isinstance(response, dict):  # a stream; never requested here
            raise ProviderError("llama.cpp returned a stream instead of a completion.")
        choice = response["choices"][0]
        text = (choice["message"].get("content") or "").strip()
        usage: Mapping[str, Any] = response.get("usage") or {}
        if choice.get("finish_reason") == "length":
            _logger.warning(
                f"The answer of {self.model} was cut at max_tokens={self._max_tokens} tokens "
                "(or by the context window); raise max_tokens or ask for shorter answers."
            )
        return Completion(
            text=text,
            model=self.model,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=latency,
        )

    def _get_llama(self) -> llama_cpp.Llama:
        with self._load_lock:
            if self._llama is None:
                self._llama = self._load()
            return self._llama

    def _load(self) -> llama_cpp.Llama:
        llama_cpp = _import_llama_cpp()
        if self._model_path is None:
            self._model_path = _embedded.embedded_model_path()
        start = time.perf_counter()
        options: dict[str, Any] = {
            "n_ctx": self._n_ctx,
            "n_threads": self._n_threads,
            "n_threads_batch": self._n_threads,
            "chat_format": self._chat_format,
            "verbose": self._verbose,
        }
        options.update(self._llama_kwargs)
        try:
            with _extra_buffers(llama_cpp, enabled=self._extra_buffers):
                llama = llama_cpp.Llama(model_path=str(self._model_path), **options)
        except (ValueError, RuntimeError, OSError) as e:
            raise ProviderConfigError(
                f"llama.cpp could not load {self._model_path}: {e}. Is it a GGUF file of a "
                "model architecture this llama-cpp-python supports?"
            ) from e
        if self._grammar_text is not None and not _grammar_parses(llama, self._grammar_text):
            llama.close()
            raise ProviderConfigError(
                "llama.cpp cannot parse the grammar given to LlamaCppClient(grammar=...); see "
                "the parse error above, and the GBNF guide at "
                "https://github.com/ggml-org/llama.cpp/blob/master/grammars/README.md."
            )
        finalizer = weakref.finalize(self, llama.close)
        finalizer.atexit = True
        self._finalizer = finalizer
        _logger.info(
            f"Loaded {self.model} in {time.perf_counter() - start:.1f} s "
            f"(n_ctx={self._n_ctx}, n_threads={self._n_threads})."
        )
        return llama

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_llama"] = None
        state["_finalizer"] = None
        del state["_load_lock"], state["_call_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load_lock = threading.Lock()
        self._call_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LlamaCppClient(model={self.model!r}, n_ctx={self._n_ctx}, "
            f"n_threads={self._n_threads}, temperature={self._temperature}, "
            f"max_tokens={self._max_tokens})"
        )


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise ProviderConfigError(
            "Local models need llama-cpp-python, which is not installed (or failed to import: "
            f"{e}). Install it with: {_embedded.INSTALL_HINT}"
        ) from e
    return llama_cpp


@functools.lru_cache(maxsize=8)
def _grammar(text: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


# The rules of llama.cpp's JSON-schema grammar that write a number's decimals and exponent.
_DECIMAL_RULE = re.compile(r"^decimal-part ::= .*$", re.MULTILINE)
_EXPONENT = " ([eE] [-+]? integral-part)?"
_SPACE_RULE = re.compile(r'^space ::= " "\?$', re.MULTILINE)


@functools.lru_cache(maxsize=64)
def schema_grammar(schema_json: str) -> str:
    """The GBNF grammar of a JSON schema, as llama.cpp builds it; where every number of the
    schema has a ``multipleOf`` of ``10**-d`` (the sampler's compact answers), numbers get at most
    ``d`` decimals (the largest such ``d``) without a trailing zero, no exponent and no spaces
    between JSON tokens, so the model cannot spend tokens on digits the prompt never shows.

    Example:
        >>> schema = {"type": "array", "items": {"type": "number", "multipleOf": 0.01}}
        >>> print(schema_grammar(json.dumps(schema)).splitlines()[0])
        decimal-part ::= [1-9] | [0-9] [1-9]
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = json_schema_to_gbnf(schema_json)
    places = _decimal_places(json.loads(schema_json))
    if places is None or _DECIMAL_RULE.search(grammar) is None or _EXPONENT not in grammar:
        return grammar
    if places == 0:
        grammar = grammar.replace(' ("." decimal-part)?', "")
        return _no_spaces(grammar.replace(_EXPONENT, ""))
    # 1 to ``places`` decimals, the last one not 0: "1.0" costs two tokens more than "1".
    digits = " | ".join(" ".join(["[0-9]"] * (n - 1) + ["[1-9]"]) for n in range(1, places + 1))
    grammar = _DECIMAL_RULE.sub(f"decimal-part ::= {digits}", grammar, count=1)
    return _no_spaces(grammar.replace(_EXPONENT, ""))


def _no_spaces(grammar: str) -> str:
    """The grammar without the optional spaces between JSON tokens: each costs a token."""
    return _SPACE_RULE.sub('space ::= ""', grammar, count=1)


def _decimal_places(schema: Any) -> int | None:
    """The most decimals any number of ``schema`` allows, if every number states its
    ``multipleOf`` as a power of ten; else ``None``."""
    found: list[int | None] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "number":
                step = node.get("multipleOf")
                places = None
                if isinstance(step, (int, float)) and 0 < step <= 1:
                    candidate = round(-math.log10(step))
                    places = candidate if math.isclose(step, 10.0**-candidate) else None
                found.append(places)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    if not found or None in found:
        return None
    return max(p for p in found if p is not None)


def _grammar_parses(llama: Any, text: str) -> bool:
    """Whether llama.cpp parses ``text`` (an unparsable grammar crashes the process later)."""
    try:
        llama_cpp = _import_llama_cpp()
        vocab = llama._model.vocab
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
    except Exception:  # private API changed: cannot check here
        return True
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def _default_threads() -> int:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, usable // 2)


@functools.lru_cache(maxsize=1)
def _cpu_has_amx() -> bool:
    """Whether the CPU advertises Intel AMX (Linux only; elsewhere assumed absent)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


@contextlib.contextmanager
def _extra_buffers(llama_cpp: Any, *, enabled: bool) -> Iterator[None]:
    """Construct a ``Llama`` with ``use_extra_bufts`` set to ``enabled``."""
    params_module = llama_cpp.llama_cpp
    if enabled or not hasattr(params_module.llama_model_default_params(), "use_extra_bufts"):
        yield
        return
    with _MODEL_PARAMS_LOCK:
        original = params_module.llama_model_default_params

        def without_extra_buffers() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        params_module.llama_model_default_params = without_extra_buffers
        try:
            yield
        finally:
            params_module.llama_model_default_params = original
