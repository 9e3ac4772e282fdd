"""estatehub: a Home Assistant-style hub for the smart systems of a housing estate."""

from __future__ import annotations

from .plugins import hookimpl

__all__ = ["__version__", "hookimpl"]
__version__ = "0.1.0"
