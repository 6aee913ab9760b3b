"""The list of registered verbs, in the order ``--help`` shows them."""

from __future__ import annotations

MODULES: list = []
