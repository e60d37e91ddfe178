"""Packaging checks: they build, lint, install and purge the real .deb, so they run as root in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from debtools import ROOT, run


@pytest.fixture(scope="session")
def root_required():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the packaging checks install the package: run them as root")
        pytest.skip("the packaging checks install the package: run them as root (make check-package)")


@pytest.fixture(scope="session")
def deb(root_required, tmp_path_factory) -> Path:
    """The .deb built by `make deb` from this tree."""
    build = tmp_path_factory.mktemp("build")
    run("make", "--no-print-directory", "-C", str(ROOT), "deb", f"BUILD={build}")
    [package] = build.glob("rcwebhook_*_all.deb")
    return package
