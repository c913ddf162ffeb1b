"""Model families and server profiles of ``fakeserver``: which names behave how, and how model lists look.

Families (decided by name, so a name passed in ``models=`` behaves the same):

* ``gpt-5*`` (GUIDE §10): reasoning models. On chat they reject ``max_tokens``, non-default
  ``temperature``/``top_p``/``presence_penalty``/``frequency_penalty``, ``logprobs: true`` and
  ``top_logprobs``; take ``max_completion_tokens``, ``reasoning_effort`` (GPT5_EFFORTS) and ``verbosity``;
  spend GPT5_REASONING_TOKENS[effort] hidden reasoning tokens (default effort ``medium``, the
  ``ReasoningEffort`` default of the reference schema).
* ``fake-reasoner*`` (GUIDE §10: llama.cpp ``--reasoning-format deepseek``, vLLM, DeepSeek): visible
  reasoning text before the answer, as ``reasoning_content``; a name ending in ``-ollama`` uses
  ``reasoning`` instead (Ollama's ``/v1``).
* ``fake-refuser*`` (GUIDE §10; ``refusal`` in the chat schema): refuses, with REFUSAL_TEXT.

Profiles (GUIDE §4, §12): ``openai`` (default); ``llama.cpp`` (llama-server: ``/v1/models`` with an
Ollama-style ``models`` list too, no ``/v1/models/{id}`` — 404 "File Not Found"); ``llama-cpp-python``
(no ``created``, ``owned_by: "me"``, 404 ``{"detail": "Not Found"}``, no ``/v1/responses``).
"""

from __future__ import annotations

from typing import Any

from . import errors

CREATED = 1_700_000_000  # fixed timestamp: keeps notebook outputs and snapshots stable
OWNED_BY = "fake"
DEFAULT_MODELS = (
    "fake-chat", "fake-instruct", "gpt-3.5-turbo-instruct", "gpt-4o-mini",  # the 2023 set: tests rely on them
    "davinci-002",  # a legacy completion model the SDK still lists (GUIDE 10): the auto rule's completions case
    "gpt-5.4-mini", "gpt-5.4", "gpt-5.4-nano", "gpt-5.5",  # GUIDE §10: OpenAI's lineup today
    "fake-reasoner", "fake-reasoner-ollama", "fake-refuser",
)
#: What llama-server / llama-cpp-python list when started as GUIDE §8/§12 show (the id is the file path).
LOCAL_MODELS = ("SmolLM2-135M-Instruct.Q4_1.gguf",)
PROFILES = ("openai", "llama.cpp", "llama-cpp-python")

#: GUIDE §10 lists none|minimal|low|medium|high|xhigh|max, "not every model takes every value":
#: these GPT-5 models take all but "max" (it gets 400 unsupported_value).
GPT5_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
ALL_EFFORTS = (*GPT5_EFFORTS, "max")  # the reference schema's ReasoningEffort enum
GPT5_DEFAULT_EFFORT = "medium"
GPT5_REASONING_TOKENS = {"none": 0, "minimal": 2, "low": 4, "medium": 8, "high": 16, "xhigh": 32}
VERBOSITY = ("low", "medium", "high")  # the reference schema's Verbosity enum
SUMMARIES = ("auto", "concise", "detailed")  # Reasoning.summary in the Responses schema
REFUSAL_TEXT = "I'm sorry, but I can't help with that."


def is_gpt5(model: str) -> bool:
    return model.startswith("gpt-5")


def is_refuser(model: str) -> bool:
    return model.startswith("fake-refuser")


def reasoning_field(model: str) -> str | None:
    """The chat field that carries visible reasoning text for ``model``, or None."""
    if not model.startswith("fake-reasoner"):
        return None
    return "reasoning" if model.endswith("-ollama") else "reasoning_content"


def reasoning_text(prompt: str) -> str:
    """The deterministic 'thoughts' of the reasoner models (and GPT-5's reasoning summary)."""
    n = len(prompt.split())
    return f"The user wrote {n} word{'' if n == 1 else 's'}. I will echo them in reverse order."


# ---------------------------------------------------------------- GPT-5 parameter rules (GUIDE §10)

def _sampling_rules(body: dict) -> None:
    """Non-default sampling values: 400 unsupported_value (GUIDE §10, e.g. griptape-ai/ComfyUI-Griptape#312,
    tmc/langchaingo#1355: "'temperature' does not support 0.2 with this model")."""
    for name, default in (("temperature", 1), ("top_p", 1), ("presence_penalty", 0), ("frequency_penalty", 0)):
        value = body.get(name)
        if value is not None and value != default:
            raise errors.unsupported_value(name, value, default)


def check_gpt5_chat(body: dict) -> None:
    """Raise the 400 a GPT-5 model gives on chat for parameters it does not take (GUIDE §10)."""
    if body.get("max_tokens") is not None:  # GUIDE §10, exact body
        raise errors.unsupported_parameter("max_tokens", "max_completion_tokens")
    _sampling_rules(body)
    if body.get("logprobs"):  # GUIDE §10: "logprobs are rejected the same way on reasoning models"
        raise errors.unsupported_parameter("logprobs")
    if body.get("top_logprobs") is not None:
        raise errors.unsupported_parameter("top_logprobs")
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in GPT5_EFFORTS:
        raise errors.unsupported_value("reasoning_effort", effort, supported=GPT5_EFFORTS)


def check_gpt5_responses(body: dict) -> None:
    """The same rules on ``/v1/responses`` (GUIDE §11: max_output_tokens and reasoning are taken)."""
    _sampling_rules({k: body.get(k) for k in ("temperature", "top_p")})
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None and effort not in GPT5_EFFORTS:
        raise errors.unsupported_value("reasoning.effort", effort, supported=GPT5_EFFORTS)


def gpt5_reasoning_tokens(effort: str | None) -> int:
    return GPT5_REASONING_TOKENS[effort or GPT5_DEFAULT_EFFORT]


# ---------------------------------------------------------------- model lists per profile

def model_object(model_id: str, profile: str = "openai") -> dict[str, Any]:
    """One entry of ``/v1/models`` (and the body of ``/v1/models/{id}`` where that exists)."""
    if profile == "llama.cpp":  # tools/server/server-context.cpp, get_res_model_info
        return {"id": model_id, "aliases": [], "tags": [], "object": "model", "created": CREATED,
                "owned_by": "llamacpp", "meta": {"vocab_type": 2, "n_vocab": 49152, "n_ctx": 2048,
                                                 "n_ctx_train": 8192, "n_embd": 576, "n_params": 134515008,
                                                 "size": 92645376, "ftype": 3}}
    if profile == "llama-cpp-python":  # llama_cpp/server/app.py, get_models: no "created" (GUIDE §4)
        return {"id": model_id, "object": "model", "owned_by": "me", "permissions": []}
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": OWNED_BY}


def _ollama_entry(model_id: str) -> dict[str, Any]:
    return {"name": model_id, "model": model_id, "modified_at": "", "size": "", "digest": "", "type": "model",
            "description": "", "tags": [""], "capabilities": ["completion"], "parameters": "",
            "details": {"parent_model": "", "format": "gguf", "family": "", "families": [""],
                        "parameter_size": "", "quantization_level": ""}}


def model_list(models: tuple[str, ...], profile: str = "openai") -> dict[str, Any]:
    """The body of ``GET /v1/models``; llama-server adds an Ollama-style ``models`` list (GUIDE §12)."""
    data = {"object": "list", "data": [model_object(m, profile) for m in models]}
    if profile == "llama.cpp":  # tools/server/server-context.cpp, get_res_models
        return {"models": [_ollama_entry(m) for m in models], **data}
    return data


def not_found(profile: str, method: str, path: str) -> errors.ApiError:
    """The 404 for a route the profile's server does not have."""
    if profile == "llama.cpp":  # tools/server/server-http.cpp, the error handler for 404
        return errors.ApiError(404, "File Not Found", raw={"error": {"message": "File Not Found",
                                                                     "type": "not_found_error", "code": 404}})
    if profile == "llama-cpp-python":  # FastAPI's default 404 (GUIDE §4)
        return errors.ApiError(404, "Not Found", raw={"detail": "Not Found"})
    return errors.ApiError(404, f"Invalid URL ({method} {path})")
