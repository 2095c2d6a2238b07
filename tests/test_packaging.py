"""Every folder with an __init__.py under the product's top-level folders is listed in pyproject.toml,
so a built wheel (not only an editable install, which finds subpackages by path) holds it."""

from __future__ import annotations

from pathlib import Path

from subtone.config.settings import tomllib

REPO = Path(__file__).resolve().parent.parent
TOP = ("service", "export", "overlay", "config")


def test_every_subpackage_is_in_the_setuptools_package_list():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"subtone." + ".".join(init.parent.relative_to(REPO).parts)
             for top in TOP for init in (REPO / top).rglob("__init__.py") if "__pycache__" not in init.parts}
    assert found - listed == set(), f"add to pyproject.toml [tool.setuptools] packages: {sorted(found - listed)}"
    assert listed - found == set(), f"listed but not a package: {sorted(listed - found)}"
