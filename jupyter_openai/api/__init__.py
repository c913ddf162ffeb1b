"""The OpenAI API's shapes as plain data, no I/O: parameters and their ranges, finished answers and
stream deltas, the Responses API's shapes, token probabilities, model lists and per-model field rules."""

from ..lazy import exports

__all__ = ["PARAMS", "Param", "check_params", "Completion", "Delta", "TokenProb", "nucleus", "reweight", "closest",
           "FieldRules"]
__getattr__, __dir__ = exports(__name__, {
    ".params": ("PARAMS", "Param", "check_params"),
    ".completion": ("Completion", "Delta"),
    ".logprobs": ("TokenProb", "nucleus", "reweight"),
    ".model_list": ("closest",),
    ".field_rules": ("FieldRules",),
})
