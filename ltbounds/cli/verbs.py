"""The list of registered verbs, in the order ``--help`` shows them."""

from __future__ import annotations

from ltbounds.cli import bench, certify, construct, convert, coverage, demo, prove, table

MODULES: list = [demo, table, construct, certify, prove, coverage, convert, bench]
