"""Meta-tests that keep the contract honest: every hook is documented, exactly."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mlartifacts import hookspecs

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "plugin-authors.md"
SPECS = ast.parse(Path(hookspecs.__file__).read_text())


def hookspec_defs() -> list[ast.FunctionDef]:
    return [
        node
        for node in SPECS.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith("hookspec") for d in node.decorator_list)
    ]


def signature(node: ast.FunctionDef) -> str:
    return f"def {node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"  # type: ignore[arg-type]


def test_the_contract_names_what_the_design_requires() -> None:
    names = {node.name for node in hookspec_defs()}
    required = {"resolve_uri", "upload", "download", "list", "delete", "supports_multipart",
                "create_multipart", "upload_part", "complete_multipart", "abort_multipart",
                "read", "write", "presign"}  # fmt: skip
    assert required <= names


@pytest.mark.parametrize("node", hookspec_defs(), ids=lambda node: node.name)
def test_hook_is_documented_with_its_exact_signature(node: ast.FunctionDef) -> None:
    guide = re.sub(r"\s+", " ", GUIDE.read_text())
    assert signature(node) in guide, f"docs/plugin-authors.md lacks `{signature(node)}`"


@pytest.mark.parametrize("node", hookspec_defs(), ids=lambda node: node.name)
def test_hook_has_a_one_line_docstring(node: ast.FunctionDef) -> None:
    doc = ast.get_docstring(node)
    assert doc, f"hook {node.name} has no docstring"
    assert "\n" not in doc.strip()


def test_guide_documents_no_stale_hooks() -> None:
    # Signatures are written as in the spec, without a trailing colon or body.
    documented = set(re.findall(r"^def (\w+)\(.*\) -> [^:]+$", GUIDE.read_text(), flags=re.MULTILINE))
    assert documented == {node.name for node in hookspec_defs()}


def test_hookspecs_module_stays_short() -> None:
    assert len(Path(hookspecs.__file__).read_text().splitlines()) < 150
