"""The protocol check: refuse a protocol notebook with every problem listed, before anything is stored."""
from __future__ import annotations

import ast
from typing import Any

import nbformat

from ..cellml.ontology import oxmeta_terms
from ..errors import InvalidInput
from .interface import (INTERFACE_TAG, PARAMETERS_TAG, REQUIRED_PARAMETERS, Interface,
                        parse_interface_yaml, tagged_cells)

MAX_NOTEBOOK_BYTES = 10 * 1024 * 1024


class ProtocolCheckError(InvalidInput):
    """A protocol that failed the check; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the protocol failed its check:\n" + "\n".join(f"  - {p}" for p in problems))


def without_magics(source: str) -> str:
    """IPython magics and shell escapes are not Python; blank them so line numbers stay right."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _parameters(source: str, problems: list[str]) -> dict[str, Any]:
    """Names and default values of the parameters cell (simple assignments only)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}  # reported with the other code cells
    params: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        params[target.id] = ast.literal_eval(node.value) if node.value else None
                    except (ValueError, TypeError, RecursionError):  # e.g. {[]: 1} is a TypeError
                        problems.append(f"parameter {target.id!r} must have a literal default value")
    return params


def check_protocol(data: bytes) -> Interface:
    """Check a protocol notebook and return its interface, or raise ProtocolCheckError."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ProtocolCheckError([f"the notebook is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB"])
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except (UnicodeDecodeError, ValueError, nbformat.ValidationError, KeyError, TypeError,
            AttributeError) as err:  # AttributeError: JSON that is a list, string or number
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ProtocolCheckError([f"not a valid Jupyter notebook (nbformat 4): {message}"]) from None
    problems: list[str] = []
    kernelspec = nb.metadata.get("kernelspec")
    if not isinstance(kernelspec, dict) or kernelspec.get("language", "python") != "python" \
            or not str(kernelspec.get("name", "")).startswith("python"):
        problems.append("the notebook names no Python kernel in its metadata (kernelspec); labkit runs "
                        "protocols on Python 3: open it in JupyterLab, choose the Python 3 kernel, save it")

    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            try:
                compile(without_magics(cell.source), f"cell {index}", "exec",
                        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)  # IPython runs top-level await
            except SyntaxError as err:
                problems.append(f"code cell {index} does not compile: {err.msg} (line {err.lineno})")

    parameters: dict[str, Any] = {}
    param_cells = tagged_cells(nb, PARAMETERS_TAG)
    if not param_cells:
        problems.append("no cell is tagged 'parameters' (papermill needs one to inject the model and settings)")
    elif param_cells[0][1].cell_type != "code":
        problems.append("the cell tagged 'parameters' must be a code cell")
    else:
        parameters = _parameters(without_magics(param_cells[0][1].source), problems)
        for name in REQUIRED_PARAMETERS:
            if name not in parameters:
                problems.append(f"the parameters cell must define {name!r}")

    interface_cells = tagged_cells(nb, INTERFACE_TAG)
    declared = None
    if len(interface_cells) != 1:
        problems.append(f"exactly one raw cell must be tagged 'interface' (found {len(interface_cells)})")
    else:
        declared = parse_interface_yaml(interface_cells[0][1].source, problems)
    if declared is not None:
        known = oxmeta_terms()
        for term in declared["requires"] + declared["optional"]:
            if term not in known:
                problems.append(f"{term!r} is not a term of the oxmeta ontology")
    if problems:
        raise ProtocolCheckError(problems)
    assert declared is not None
    declared["parameters"] = {k: v for k, v in parameters.items() if k not in REQUIRED_PARAMETERS}
    return Interface.from_json(declared)
