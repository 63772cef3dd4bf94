"""Names users give to vnodes, vifaces and vnetworks, and the rules they must follow.

A vnode name becomes a container name, a hostname and part of file paths; a viface
name becomes an interface name inside the vnode (IFNAMSIZ is 16 with the NUL).
"""

from __future__ import annotations

import re

from pydistem.errors import ValidationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
VNODE_MAX = 63  # a hostname label
VNETWORK_MAX = 63
VIFACE_MAX = 15  # IFNAMSIZ - 1


def check_name(field: str, value: object, max_len: int) -> str:
    """Return ``value`` if it is a usable name, else raise ValidationError(field, reason)."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(field, f"{value!r} is {len(value)} characters, at most {max_len}")
    if not _NAME.match(value):
        raise ValidationError(
            field,
            f"{value!r} may hold only letters, digits, '_', '.', '-' and must start with a "
            "letter or digit (no spaces, '/', or shell metacharacters)",
        )
    if value in (".", ".."):
        raise ValidationError(field, f"{value!r} is not a name")
    return value


_GROUP = re.compile(r"^(?P<prefix>[^\[\]]*)\[(?P<lo>\d+)-(?P<hi>\d+)\](?P<suffix>[^\[\]]*)$")


def expand_group(pattern: str, field: str = "name") -> list[str]:
    """Expand ``node-[1-50]`` into ``node-1 .. node-50`` (zero padding kept: ``[01-10]``).

    A name without brackets expands to itself.
    """
    if "[" not in pattern and "]" not in pattern:
        return [pattern]
    m = _GROUP.match(pattern)
    if not m:
        raise ValidationError(field, f"{pattern!r} is not a group like 'node-[1-50]'")
    lo_s, hi_s = m["lo"], m["hi"]
    lo, hi = int(lo_s), int(hi_s)
    if hi < lo:
        raise ValidationError(field, f"{pattern!r}: range end {hi} is below its start {lo}")
    if hi - lo >= 100_000:
        raise ValidationError(field, f"{pattern!r}: more than 100000 names")
    width = len(lo_s) if lo_s.startswith("0") and len(lo_s) > 1 else 0
    return [f"{m['prefix']}{i:0{width}d}{m['suffix']}" for i in range(lo, hi + 1)]
