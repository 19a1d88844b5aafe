"""The installed package: stubs next to the modules, in step with them."""

import ast
import inspect
from pathlib import Path

import ticketyboo as tb
from ticketyboo import core

PKG = Path(tb.__file__).parent


def test_typing_files_are_installed():
    assert (PKG / "py.typed").is_file()
    assert (PKG / "core.pyi").is_file()


def test_core_stub_matches_the_generated_module():
    tree = ast.parse((PKG / "core.pyi").read_text())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stubbed |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    missing = sorted(name for name in stubbed if not hasattr(core, name))
    assert missing == [], f"stubbed but not in ticketyboo.core: {missing}"
    functions = {
        name for name, value in vars(core).items()
        if not name.startswith("_") and inspect.isfunction(value) and value.__module__ == core.__name__
        and not name.endswith(("_get", "_swigregister"))
    }
    unstubbed = sorted(functions - stubbed)
    assert unstubbed == [], f"in ticketyboo.core but not stubbed: {unstubbed}"


def test_public_names_are_exported():
    for name in tb.__all__:
        assert hasattr(tb, name), name
