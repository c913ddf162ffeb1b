"""The package version, in one place (read by hatch, the User-Agent and ``jupyter_openai.__version__``)."""

__version__ = "0.1.0"
