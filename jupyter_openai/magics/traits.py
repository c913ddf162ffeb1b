"""Secrets in traitlets: a trait that holds a :class:`~jupyter_openai.secret.Secret`, and the
masking of the raw values that ``%config`` and ``ipython_config.py`` leave in ``Config`` objects.

A key set with ``%config CompleteMagics.api_key = ...`` or ``c.CompleteMagics.api_key = ...``
reaches the trait as a plain string, and traitlets keeps that string in every ``Config`` it
merges it into (the shell's, each configurable's, the application's), where ``%config``, ``json``
and the notebook's saved outputs would show it. :class:`MaskedConfigMixin` replaces it there by
the trait's :class:`Secret` as soon as it is loaded. Needs traitlets, not IPython.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from traitlets import TraitError, TraitType
from traitlets.config import Application, Config, Configurable

from ..secret import Secret


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


def _configs(owner: Configurable, cfg: Config) -> Iterator[Config]:
    """Every Config that may hold what ``owner`` just loaded from ``cfg``."""
    yield cfg
    node: Any = owner
    while node is not None:  # the owner, its parent (the shell), theirs (kernel, application)...
        yield node.config
        node = getattr(node, "parent", None)
    for configurable in getattr(getattr(owner, "shell", None), "configurables", None) or ():
        yield configurable.config
    if Application.initialized():
        yield Application.instance().config


def mask_config(cfg: Config, sections: set[str], names: set[str]) -> None:
    """Replace, in place and at any depth, raw values of the secret traits ``names`` under the class
    sections ``sections`` by a :class:`Secret` (an unusable value, such as bytes, is dropped)."""
    for key, value in list(dict.items(cfg)):
        if not isinstance(value, Config):
            continue
        if key in sections:
            for name in names & set(dict.keys(value)):
                raw = dict.__getitem__(value, name)
                if isinstance(raw, str):
                    dict.__setitem__(value, name, Secret(raw))
                elif not isinstance(raw, Secret):
                    dict.__delitem__(value, name)
        mask_config(value, sections, names)  # nested sections (c.Shell.CompleteMagics...) apply too


class MaskedConfigMixin:
    """Put before the Configurable base (``class C(MaskedConfigMixin, Magics)``): after every config
    load, the raw values of its :class:`SecretTrait` traits are masked in every Config around it.
    A plain mixin, not a Configurable itself: one traitlets class fewer to set up at ``%load_ext``."""

    def _load_config(self: Any, cfg: Config, *args: Any, **kwargs: Any) -> None:
        try:
            super()._load_config(cfg, *args, **kwargs)  # type: ignore[misc]  # Configurable's, after this mixin
        finally:
            names = {name for name, trait in self.traits(config=True).items() if isinstance(trait, SecretTrait)}
            sections = set(self.section_names())
            seen: set[int] = set()
            for config in _configs(self, cfg):
                if isinstance(config, Config) and id(config) not in seen:
                    seen.add(id(config))
                    mask_config(config, sections, names)
