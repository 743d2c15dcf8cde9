"""The blog post's app exactly as the post writes it, hard-coded secret included.

``bench/baselines/blogpost.py`` assembles the post's snippets but generates
its secret (a benchmark has no use for the flaw); the audit's tests need the
post's literal placeholder back, so this module puts it where the post has it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Imported by name: the post's code is untyped on purpose, and mypy --strict
# would check it through a plain import.
blogpost: Any = import_module("bench.baselines.blogpost")
app = blogpost.app

#: The post's ``token_manager = TokenManager(...)`` with its literal placeholder.
blogpost.token_manager.secret_key = "your-secret-key"  # allowed: the flaw under audit

__all__ = ["app"]
