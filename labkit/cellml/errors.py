"""The one exception type that CellML loading raises for unacceptable input."""

from __future__ import annotations


class CellMLError(ValueError):
    """A file that is not acceptable CellML.

    Callers (upload handlers, the notebook UI) show ``str(err)`` to users, so it
    names the problem, the line where it is known, and then any detail, e.g.
    ``"not well-formed XML at line 3: Premature end of data in tag b"``.

    Attributes:
        message: the problem and its detail, without the line number.
        line: 1-based line in the input where the problem sits, if known.
        problem: the short summary of the problem.
        detail: extra explanation (may be ``None``).
    """

    def __init__(self, problem: str, line: int | None = None, detail: str | None = None) -> None:
        self.problem = problem
        self.line = line if (line is not None and line > 0) else None
        self.detail = detail
        self.message = problem if not detail else f"{problem}: {detail}"
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.problem
        if self.line is not None:
            text += f" at line {self.line}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[type, tuple[str, int | None, str | None]]:
        """Keep line and detail when pickled (errors cross process boundaries in the task queue)."""
        return (type(self), (self.problem, self.line, self.detail))
