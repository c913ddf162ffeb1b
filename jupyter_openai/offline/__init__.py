"""The bundled offline model: SmolLM2 on llama-cpp-python's server, one per machine, shared by the
kernels that use it (found through a registry file, stopped once idle), answering when there is no key
and no internet."""

from ..lazy import exports

__all__ = ["LocalServer", "LocalServerError", "shared_server", "is_available"]
__getattr__, __dir__ = exports(__name__, {
    ".server": ("LocalServer", "LocalServerError", "shared_server", "is_available"),
})
