"""The forms (ipywidgets): the completion form, its conversation mode and the probability view. They
know nothing of the magics."""

from ..lazy import exports

__all__ = ["CompletionForm", "ChatForm", "ProbsView", "alternatives_html", "probs_html"]
__getattr__, __dir__ = exports(__name__, {
    ".form": ("CompletionForm",),
    ".chat": ("ChatForm",),
    ".probs": ("ProbsView", "alternatives_html", "probs_html"),
})
