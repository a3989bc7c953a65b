"""Testing support for mlartifacts and its plugins.

- :mod:`mlartifacts.testing.memory`: the in-memory reference backend (``memory://``),
  with multipart, ranged reads and fault injection.
- :mod:`mlartifacts.testing.contract`: the contract suite every backend's
  conformance tests subclass (needs pytest).
"""

from .memory import MemoryBackend

__all__ = ["MemoryBackend"]
