"""The steps of docs/tutorial.md: its fenced blocks, each with the directive above it.

Every fenced block of the tutorial is preceded (blank lines aside) by an HTML
comment that says what the block is, which readers do not see::

    <!-- tutorial: setup -->                   the reader's virtualenv and pip install;
                                               the test brings its own environment
    <!-- tutorial: shell -->                   bash commands, run in the project folder
    <!-- tutorial: stdin CMD... -->            CMD run with the block as its input
                                               (``stdin python manage.py shell``)
    <!-- tutorial: file PATH -->               the whole content of PATH
    <!-- tutorial: file PATH append -->        appended to PATH
    <!-- tutorial: background NAME wait-for TEXT -->
                                               a long-running command (worker, server),
                                               ready once TEXT is in its output, or once
                                               TEXT, a URL, answers
    <!-- tutorial: output -->                  what the step above prints (see
                                               :func:`output_matches`)

A block without a directive fails the test: nothing on the page goes unrun.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

KINDS = {"setup", "shell", "stdin", "file", "background", "output"}
_DIRECTIVE = re.compile(r"^<!-- tutorial: (?P<body>.+?) -->$")
_FENCE = re.compile(r"^(?P<fence>```+)(?P<info>.*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')


@dataclass(frozen=True)
class Block:
    """One fenced block of the tutorial and what its directive says to do with it."""

    kind: str
    args: tuple[str, ...]
    text: str
    line: int  # the fence's line in the page, for messages
    title: str | None = None  # the fence's title="...", shown to readers

    def where(self) -> str:
        return f"docs/tutorial.md line {self.line} ({' '.join((self.kind, *self.args))})"


def parse(page: str) -> list[Block]:
    """The page's fenced blocks in order; each one must follow a valid directive."""
    lines = page.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, start = opening["fence"], index
        end = next((i for i in range(start + 1, len(lines)) if lines[i] == fence), None)
        if end is None:
            raise ValueError(f"docs/tutorial.md line {start + 1}: the fence is never closed")
        words = _directive_above(lines, start)
        title = _TITLE.search(opening["info"])
        blocks.append(
            Block(
                kind=words[0],
                args=tuple(words[1:]),
                text="\n".join(lines[start + 1 : end]) + "\n",
                line=start + 1,
                title=title["title"] if title else None,
            )
        )
        index = end + 1
    return blocks


def _directive_above(lines: list[str], fence_index: int) -> list[str]:
    above = fence_index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    found = _DIRECTIVE.match(lines[above].strip()) if above >= 0 else None
    if not found:
        raise ValueError(
            f"docs/tutorial.md line {fence_index + 1}: a code block without a "
            "'<!-- tutorial: ... -->' directive above it (every block is run by the test)"
        )
    words = shlex.split(found["body"])
    if words[0] not in KINDS:
        raise ValueError(f"docs/tutorial.md line {above + 1}: unknown directive {words[0]!r}")
    return words


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows, with its ``...`` abbreviations.

    Lines are compared without their trailing white space (and ``\\r``), a
    no-break space as a space (a terminal shows no difference: Django's
    ``filesizeformat`` writes "90\\xa0bytes"), and blank lines at either end
    are ignored. A line that is just ``...`` stands
    for any number of lines, none included; ``...`` inside a line for any text
    on that line.
    """
    pattern = ""
    for line in _lines(expected):
        if line.strip() == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += r"[^\n]*?".join(re.escape(part) for part in line.split("...")) + r"\n"
    text = "".join(line + "\n" for line in _lines(actual))
    return re.fullmatch(pattern, text) is not None


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r", "").replace("\xa0", " ").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines
