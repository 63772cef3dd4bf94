"""Distem's ``vcpu`` and ``vmem`` objects and descs, mapped to pydistem's CpuLimit and
MemoryLimit. Pure functions (no Coordinator).

vcpu desc: ``{"corenb": 2, "val": 0.5, "unit": "ratio"}`` (``mhz``: absolute; no ``val``:
full speed) or ``{"vcores": [{"frequency": x}, ...]}``. vmem desc: ``{"mem": 512,
"swap": 1024, "hierarchy": "v1", "soft_limit": 256}`` in MB. Numbers may come as strings.
disk_throttling: ``{"hierarchy": "v1", "limits": [{"device": "/dev/sda", "read_limit": n,
"write_limit": n}]}`` (bytes per second), or Distem 1.3's flat ``{"device", "read_limit",
"write_limit"}``.
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator.compat.encoding import invalid, not_implemented
from pydistem.errors import ValidationError
from pydistem.model.limits import CpuLimit, DiskThrottle, MemoryLimit
from pydistem.model.units import parse_memory


def _frequency(val: Any, unit: Any, field: str) -> float | str:
    if val in (None, ""):
        return 1.0
    kind = str(unit or "mhz").lower()
    if kind == "ratio":
        try:
            return float(val)
        except (TypeError, ValueError):
            raise invalid(f"{field}.val: {val!r} is not a number") from None
    if kind == "mhz":
        return f"{val}MHz"
    raise invalid(f"{field}.unit: {unit!r} is not mhz or ratio")


def cpu_from_desc(desc: Any, field: str = "vcpu", old: CpuLimit | None = None) -> dict[str, Any]:
    """pydistem ``cpu`` fields from a Distem vcpu desc (``old``: the fields kept on update)."""
    if not isinstance(desc, dict):
        raise invalid(f"{field}: a JSON object like {{'corenb': 1, 'val': 1, 'unit': 'ratio'}}")
    out: dict[str, Any] = old.model_dump(exclude_none=True) if old else {}
    if "vcores" in desc:
        vcores = desc["vcores"]
        if isinstance(vcores, dict):  # a saved vcpu object: {"0": {...}, ...}
            vcores = list(vcores.values())
        if not isinstance(vcores, list) or not vcores:
            raise invalid(f"{field}.vcores: a non-empty array of {{'frequency': x}}")
        freqs = {str((c or {}).get("frequency")) for c in vcores if isinstance(c, dict)}
        if len(freqs) > 1:
            raise not_implemented("vcores at different frequencies (one speed per vnode)")
        raw = vcores[0].get("frequency") if isinstance(vcores[0], dict) else None
        out["cores"] = len(vcores)
        if raw not in (None, "", "0", 0):
            number = float(raw)
            out["frequency"] = number if number <= 1 else f"{raw}MHz"
        return out
    if desc.get("corenb") not in (None, ""):
        out["cores"] = desc["corenb"]
        out.pop("pcores", None)
    if "val" in desc or "unit" in desc or old is None:
        out["frequency"] = _frequency(desc.get("val"), desc.get("unit"), field)
    return out


def memory_from_desc(desc: Any, field: str = "vmem") -> dict[str, Any] | None:
    """pydistem ``memory`` fields from a Distem vmem desc; None for an empty desc."""
    if not isinstance(desc, dict):
        raise invalid(f"{field}: a JSON object like {{'mem': 512, 'swap': 1024}}")
    soft = desc.get("soft_limit")
    mem = desc.get("mem")
    if mem in (None, "", []):
        mem = desc.get("hard_limit")
    swap = desc.get("swap")
    out: dict[str, Any] = {}
    if soft not in (None, "", []):
        out["soft"] = str(soft)
    if mem in (None, "", []):
        if swap not in (None, "", []):
            raise invalid(f"{field}.mem: required with swap")
        return out or None
    out["limit"] = str(mem)
    if swap not in (None, "", []):
        out["swap"] = str(swap)
    return out


def _mhz(cpu: CpuLimit, pnode_mhz: float) -> str:
    if isinstance(cpu.frequency, str):
        return f"{round(float(cpu.frequency[:-3]), 3):.12g}"
    return f"{round(cpu.frequency * pnode_mhz, 3):.12g}" if pnode_mhz > 0 else "0"


def vcpu(
    cpu: CpuLimit | None, pnode_cores: int, pnode_mhz: float, pcores: list[int] | None = None
) -> dict[str, Any] | None:
    """Distem's vcpu object: ``{"pcpu", "vcores": {id: {"id", "pcore", "frequency"}}}``."""
    if cpu is None:
        return None
    n = cpu.cores or pnode_cores or 1
    held = pcores or cpu.pcores
    return {
        "pcpu": "0",
        "vcores": {
            str(i): {
                "id": str(i),
                "pcore": str(held[i]) if held and i < len(held) else None,
                "frequency": _mhz(cpu, pnode_mhz),
            }
            for i in range(n)
        },
    }


def _mb(text: str | None, field: str) -> str:
    if text is None:
        return ""
    try:
        return str(parse_memory(field, text) // 1024**2) if text != "0" else "0"
    except ValidationError:
        return text


def vmem(memory: MemoryLimit | None) -> dict[str, Any] | None:
    """Distem's vmem object: values as strings in MB, unset ones ``""``."""
    if memory is None:
        return None
    return {
        "mem": _mb(memory.limit, "limit"),
        "swap": _mb(memory.swap, "swap"),
        "hierarchy": None,
        "soft_limit": _mb(memory.soft, "soft"),
        "hard_limit": "",
    }


_LIMIT_KEYS = {
    "device": "device",
    "read_limit": "read",
    "write_limit": "write",
    "read_iops": "read_iops",
    "write_iops": "write_iops",
}


def disk_from_desc(desc: Any, field: str) -> list[dict[str, Any]] | None:
    """pydistem ``disk`` throttles from Distem's ``disk_throttling``; None for an empty
    one (no throttling). ``hierarchy`` is ignored: the pnode's own cgroup version is used.
    Raises ValidationError naming ``field``.
    """
    if desc in (None, "", {}, []):
        return None
    if not isinstance(desc, dict):
        raise ValidationError(field, 'an object like {"limits": [{"device": "/dev/sda", ...}]}')
    if "limits" in desc:
        items = desc["limits"]
        if items in (None, ""):
            return None
        if not isinstance(items, list):
            raise ValidationError(f"{field}.limits", "a JSON array")
        prefix = f"{field}.limits"
    else:  # Distem 1.3: one device, flat
        items, prefix = [desc], field
    out = []
    for i, item in enumerate(items):
        where = f"{prefix}[{i}]" if prefix.endswith("limits") else prefix
        if not isinstance(item, dict):
            raise ValidationError(where, "an object {device, read_limit, write_limit}")
        throttle = {
            ours: item[theirs]
            for theirs, ours in _LIMIT_KEYS.items()
            if item.get(theirs) not in (None, "")
        }
        if set(throttle) <= {"device"}:
            continue  # a device without limits: nothing to throttle
        out.append(throttle)
    return out or None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def disk_throttling(disk: list[DiskThrottle] | None) -> dict[str, Any] | None:
    """Distem's disk_throttling object: ``{"hierarchy", "limits": [{"device",
    "read_limit", "write_limit"}]}`` (bytes per second as written; a throttle of the
    rootfs's disk has ``device`` null)."""
    if not disk:
        return None
    limits = []
    for t in disk:
        entry: dict[str, Any] = {
            "device": t.device,
            "read_limit": _text(t.read),
            "write_limit": _text(t.write),
        }
        if t.read_iops is not None:
            entry["read_iops"] = str(t.read_iops)
        if t.write_iops is not None:
            entry["write_iops"] = str(t.write_iops)
        limits.append(entry)
    return {"hierarchy": None, "limits": limits}
