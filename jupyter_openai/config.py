"""Connection settings: where they come from, their defaults, and how the key is masked.

Precedence, highest first: explicit arguments (magic options, form fields, keyword
arguments) > traitlets config (``%config``, ``ipython_config.py``) > environment > defaults.
This module resolves the last two layers; callers pass the first two as overrides.

Environment names are those of the official SDK: ``OPENAI_API_KEY``, ``OPENAI_ORG_ID``
(also the older ``OPENAI_ORGANIZATION``), ``OPENAI_PROJECT_ID`` and ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from .errors import ConfigurationError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 2

ENV_API_KEY = "OPENAI_API_KEY"
ENV_ORGANIZATION = ("OPENAI_ORG_ID", "OPENAI_ORGANIZATION")
ENV_PROJECT = "OPENAI_PROJECT_ID"
ENV_BASE_URL = "OPENAI_BASE_URL"

MISSING_KEY_HELP = (
    "No API key: set the OPENAI_API_KEY environment variable before starting Jupyter, "
    "or put c.CompleteMagics.api_key = '...' in ~/.ipython/profile_default/ipython_config.py. "
    "Do not paste the key into a notebook cell (nor %env): it would be saved in the file."
)


def mask_key(key: str | None) -> str:
    """Show that a key is set without revealing it: ``sk-…WXYZ`` (last four only)."""
    if not key:
        return "<not set>"
    if len(key) < 20:
        return "<set: ***>"
    prefix = key.split("-", 1)[0] + "-" if "-" in key[:8] else ""
    return f"<set: {prefix}…{key[-4:]}>"


class SecretStr(str):
    """A string that shows itself masked (repr, str, format) but is the real key underneath.

    Use :meth:`reveal` to get the plain value; it is only ever called to build the
    ``Authorization`` header.
    """

    def reveal(self) -> str:
        """The real value, as a plain ``str``."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return mask_key(self.reveal())

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)


def reveal(value: str | None) -> str | None:
    """The plain value of a possibly masked string."""
    return value.reveal() if isinstance(value, SecretStr) else value


def _first_env(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def is_openai_host(base_url: str) -> bool:
    """True when the URL points at OpenAI's own API (which always needs a key)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


class Settings:
    """Everything a client needs to reach a server; immutable. The key never shows in its repr.

    (A plain class rather than a dataclass: importing ``dataclasses`` costs more than this.)
    """

    FIELDS = ("api_key", "organization", "project", "base_url", "connect_timeout", "read_timeout", "max_retries")
    __slots__ = FIELDS
    api_key: SecretStr | None
    organization: str | None
    project: str | None
    base_url: str
    connect_timeout: float
    read_timeout: float
    max_retries: int

    def __init__(self, api_key: str | None = None, organization: str | None = None, project: str | None = None,
                 base_url: str = DEFAULT_BASE_URL, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 read_timeout: float = DEFAULT_READ_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        for name, value in zip(self.FIELDS, (api_key, organization, project, base_url, connect_timeout,
                                             read_timeout, max_retries), strict=False):
            object.__setattr__(self, name, value)
        self._check()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Settings are immutable: use with_overrides({name}=...)")

    def _values(self) -> tuple[object, ...]:
        return tuple(object.__getattribute__(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def _check(self) -> None:
        if not isinstance(self.base_url, str):
            raise ConfigurationError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
        url = self.base_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"base_url must be an http(s) URL, got {url!r}")
        object.__setattr__(self, "base_url", url)
        object.__setattr__(self, "api_key", SecretStr(reveal(self.api_key)) if self.api_key else None)
        if not 0 < self.connect_timeout < float("inf") or not 0 < self.read_timeout < float("inf"):
            raise ConfigurationError("timeouts must be positive numbers of seconds")
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the environment, with non-None ``overrides`` on top."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "api_key": _first_env(env, ENV_API_KEY),
            "organization": _first_env(env, *ENV_ORGANIZATION),
            "project": _first_env(env, ENV_PROJECT),
            "base_url": _first_env(env, ENV_BASE_URL) or DEFAULT_BASE_URL,
        }
        unknown = set(overrides) - set(cls.FIELDS)
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values.update({name: value for name, value in overrides.items() if value is not None and value != ""})
        return cls(**values)  # type: ignore[arg-type]

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with the non-None ``overrides`` applied."""
        unknown = set(overrides) - set(self.FIELDS)
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = dict(zip(self.FIELDS, self._values(), strict=False))
        values.update({k: v for k, v in overrides.items() if v is not None and v != ""})
        return type(self)(**values)  # type: ignore[arg-type]

    def require_key(self) -> None:
        """Raise :class:`ConfigurationError` if OpenAI's own API is targeted without a key."""
        if not self.api_key and is_openai_host(self.base_url):
            raise ConfigurationError(MISSING_KEY_HELP)

    def headers(self, user_agent: str) -> dict[str, str]:
        """The HTTP headers these settings imply (the key only goes here)."""
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if self.api_key:
            # Masked in any repr (e.g. tracebacks that show local variables); sent as the real value.
            headers["Authorization"] = SecretStr("Bearer " + reveal(self.api_key))
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def __repr__(self) -> str:
        return (
            f"Settings(api_key={self.api_key!r}, organization={self.organization!r}, "
            f"project={self.project!r}, base_url={self.base_url!r}, connect_timeout={self.connect_timeout}, "
            f"read_timeout={self.read_timeout}, max_retries={self.max_retries})"
        )

    __str__ = __repr__
