"""Secrets in traitlets: a trait that holds a :class:`~jupyter_openai.secrets.Secret`.

Needs traitlets, not IPython.
"""

from __future__ import annotations

from typing import Any

from traitlets import TraitError, TraitType

from .secrets import Secret


class SecretTrait(TraitType):
    """A trait holding a :class:`Secret` (or None); a string set from config is wrapped at once.

    Its error messages never contain the value given.
    """

    default_value = None
    allow_none = True
    info_text = "a secret string"

    def validate(self, obj: Any, value: Any) -> Secret | None:
        if value is None or value == "":
            return None
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        owner = type(obj).__name__ if obj is not None else "a"
        raise TraitError(f"The {self.name!r} trait of a {owner} instance must be a string (the key), "
                         f"not {type(value).__name__}; the value is not shown.")

