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
from .secret import Secret, mask_key, reveal, wire_value

__all__ = ["Settings", "Secret", "SecretStr", "mask_key", "reveal", "is_openai_host", "MISSING_KEY_HELP",
           "DEFAULT_BASE_URL", "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_READ_TIMEOUT", "DEFAULT_MAX_RETRIES",
           "ENV_API_KEY", "ENV_ORGANIZATION", "ENV_PROJECT", "ENV_BASE_URL"]

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


#: The old name of :class:`~jupyter_openai.secret.Secret` (it was a ``str`` subclass; it no longer is).
SecretStr = Secret


_QUOTES = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u00ab\u00bb"  # what word processors make of ' and "


def _key_problem(key: str) -> str | None:
    """What makes ``key`` unusable in an ``Authorization`` header, in words that never quote it."""
    for position, char in enumerate(key, 1):
        if char.isspace():
            return f"it has a space or line break inside it (character {position})"
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"it has a control character inside it (character {position})"
        if ord(char) > 0x7E:
            kind = "a typographic quote" if char in _QUOTES else "a non-ASCII character"
            return f"it contains {kind} (U+{ord(char):04X}, character {position}); keys are plain ASCII"
    return None


def _clean_key(value: object) -> tuple[Secret | None, str | None]:
    """The key as a :class:`Secret` without surrounding whitespace, or the reason it is unusable."""
    if value is None:
        return None, None
    if not isinstance(value, (str, Secret)):
        return None, f"api_key must be a string, not {type(value).__name__} (the value is not shown)"
    text = reveal(value).strip()  # type: ignore[union-attr]
    if not text:
        return None, None
    problem = _key_problem(text)
    if problem:
        return None, f"The API key is malformed: {problem}. Copy it again from the provider's page."
    return Secret(text), None


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

    ``api_key`` is kept as a :class:`~jupyter_openai.secret.Secret` without surrounding whitespace;
    a key that cannot be sent (inner whitespace, control or non-ASCII characters, not a string) is a
    :class:`ConfigurationError` here, before any request, and the message never quotes it.
    ``direct=True`` connects straight to ``base_url``, never through a proxy from the environment
    (the bundled local server on 127.0.0.1).

    (A plain class rather than a dataclass: importing ``dataclasses`` costs more than this.)
    """

    FIELDS = ("api_key", "organization", "project", "base_url", "connect_timeout", "read_timeout", "max_retries",
              "direct")
    __slots__ = FIELDS
    api_key: Secret | None
    organization: str | None
    project: str | None
    base_url: str
    connect_timeout: float
    read_timeout: float
    max_retries: int
    direct: bool

    def __init__(self, api_key: str | Secret | None = None, organization: str | None = None,
                 project: str | None = None, base_url: str = DEFAULT_BASE_URL,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, read_timeout: float = DEFAULT_READ_TIMEOUT,
                 max_retries: int = DEFAULT_MAX_RETRIES, direct: bool = False) -> None:
        # The key is wrapped first, so no frame of a traceback (locals included) shows it raw from here on.
        api_key, problem = _clean_key(api_key)
        for name, value in zip(self.FIELDS, (api_key, organization, project, base_url, connect_timeout,
                                             read_timeout, max_retries, direct), strict=True):
            object.__setattr__(self, name, value)
        if problem:
            raise ConfigurationError(problem)
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
        if not 0 < self.connect_timeout < float("inf") or not 0 < self.read_timeout < float("inf"):
            raise ConfigurationError("timeouts must be positive numbers of seconds")
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")
        if not isinstance(self.direct, bool):
            raise ConfigurationError(f"direct must be True or False, got {self.direct!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the environment, with non-None ``overrides`` on top."""
        values = _from_environment(os.environ if env is None else env)  # no local holds the environment
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

    def headers(self, user_agent: str) -> dict[str, str | Secret]:
        """The HTTP headers these settings imply; ``Authorization`` is a :class:`Secret` (masked)."""
        headers: dict[str, str | Secret] = {"User-Agent": user_agent, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = Secret("Bearer " + self.api_key.reveal())
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def wire_headers(self, user_agent: str) -> dict[str, str]:
        """:meth:`headers` as sent, for the client's send path only: every value a ``str``, the
        ``Authorization`` one still masked in any repr (request objects, traceback locals)."""
        return {name: wire_value(value) for name, value in self.headers(user_agent).items()}

    def proxies(self) -> dict[str, None] | None:
        """The ``proxies=`` argument for requests: with ``direct``, none, whatever the environment says."""
        return {"http": None, "https": None, "all": None} if self.direct else None

    def __repr__(self) -> str:
        return (
            f"Settings(api_key={self.api_key!r}, organization={self.organization!r}, "
            f"project={self.project!r}, base_url={self.base_url!r}, connect_timeout={self.connect_timeout}, "
            f"read_timeout={self.read_timeout}, max_retries={self.max_retries}"
            + (", direct=True)" if self.direct else ")")
        )

    __str__ = __repr__


def _from_environment(env: Mapping[str, str]) -> dict[str, object]:
    """The settings the environment gives (the key already wrapped)."""
    key = _first_env(env, ENV_API_KEY)
    return {
        "api_key": Secret(key) if key else None,
        "organization": _first_env(env, *ENV_ORGANIZATION),
        "project": _first_env(env, ENV_PROJECT),
        "base_url": _first_env(env, ENV_BASE_URL) or DEFAULT_BASE_URL,
    }
