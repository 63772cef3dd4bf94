"""Distem's global /etc/hosts on a pnode: a marked block in the pnode's own /etc/hosts.

The block holds ``<ip> <vnode>`` lines between ``# BEGIN pydistem <tag>`` and
``# END pydistem <tag>`` and is journaled (kind ``etchosts``, id = the file) before it
is written, so ``clean`` (``distem -q``, ``distem clean``) removes exactly that block
and leaves every other line of the file as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydistem.agent.journal import Entry, Journal

KIND = "etchosts"


def markers(tag: str) -> tuple[str, str]:
    return (
        f"# BEGIN pydistem {tag} (vnodes; removed by distem clean)",
        f"# END pydistem {tag}",
    )


def without_block(text: str, tag: str) -> str:
    """``text`` with the block of ``tag`` removed (all of them, if repeated)."""
    begin, end = markers(tag)
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped == begin:
            inside = True
        elif inside and stripped == end:
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def with_block(text: str, tag: str, lines: Iterable[str]) -> str:
    """``text`` with the block of ``tag`` replaced by ``lines`` (none: no block)."""
    body = without_block(text, tag)
    lines = list(lines)
    if not lines:
        return body
    if body and not body.endswith("\n"):
        body += "\n"
    begin, end = markers(tag)
    return body + "\n".join([begin, *lines, end]) + "\n"


def _rewrite(path: Path, text: str) -> None:
    # in place, not by rename: /etc/hosts is often a bind mount (containers)
    with path.open("r+") as fh:
        fh.write(text)
        fh.truncate()


def write_block(path: Path, tag: str, lines: Iterable[str], journal: Journal) -> None:
    """Make the block of ``tag`` in ``path`` exactly ``lines``. Idempotent."""
    journal.add(KIND, str(path), tag=tag)
    _rewrite(path, with_block(path.read_text(), tag, lines))


def clean_etchosts(entry: Entry) -> None:
    """Remove the block an agent wrote (journal entry ``etchosts``). Idempotent."""
    path = Path(entry.id)
    if path.exists():
        text = path.read_text()
        new = without_block(text, str(entry.data.get("tag", "")))
        if new != text:
            _rewrite(path, new)
