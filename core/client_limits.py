"""The client's CPU, memory and disk calls, named as the Ruby Distem client's
(``vcpu_create``, ``vcpu_update``, ``vcpu_remove``, ``vcpu_info``, ``vmem_create``,
``vmem_update``) plus ``vmem_remove``, ``vmem_info``, ``vdisk_set``, ``vdisk_remove``,
``vdisk_info`` and ``vnode_limits``. Mixed into :class:`pydistem.Client`."""

from __future__ import annotations

from typing import Any, Protocol

from pydistem.errors import ValidationError


class _Requester(Protocol):
    def _request(self, method: str, path: str, body: Any = None, *, wait: float = 0.0) -> Any: ...


def cpu_desc(val: float | str, unit: str) -> dict[str, Any]:
    """Distem's ``val``/``unit`` as pydistem's ``frequency``: ``ratio`` is a fraction of
    the core speed, ``mhz`` an absolute frequency."""
    kind = str(unit).lower()
    if kind == "ratio":
        return {"frequency": val}
    if kind == "mhz":
        return {"frequency": f"{val}MHz"}
    raise ValidationError("unit", f"{unit!r} is not 'mhz' or 'ratio'")


class LimitsCalls:
    """vcpu / vmem methods (need ``self._request``)."""

    def vcpu_create(
        self: _Requester,
        vnode: str,
        val: float | str = 1,
        unit: str = "mhz",
        corenb: int = 1,
    ) -> dict[str, Any]:
        """Give ``vnode`` ``corenb`` cores at ``val`` (``unit`` ``mhz``: absolute, at most
        the pnode's frequency; ``ratio``: a fraction in (0, 1]). Live if it runs.
        Raises ValidationError (``cpu.cores`` above the pnode's, ``cpu.frequency``...),
        AlreadyExists when it has a CPU limit already (use vcpu_update)."""
        body = {"cores": corenb, **cpu_desc(val, unit)}
        return self._request("POST", f"/vnodes/{vnode}/cpu", body, wait=60)  # type: ignore[no-any-return]

    def vcpu_update(
        self: _Requester, vnode: str, val: float | str, unit: str = "mhz"
    ) -> dict[str, Any]:
        """Change the speed of ``vnode``'s cores (see vcpu_create); NotFound if it has no
        CPU limit."""
        return self._request("PUT", f"/vnodes/{vnode}/cpu", cpu_desc(val, unit), wait=60)  # type: ignore[no-any-return]

    def vcpu_set(self: _Requester, vnode: str, **fields: Any) -> dict[str, Any]:
        """Change some fields of ``vnode``'s CPU limit: ``cores``, ``frequency``, ``pcores``."""
        return self._request("PUT", f"/vnodes/{vnode}/cpu", fields, wait=60)  # type: ignore[no-any-return]

    def vcpu_remove(self: _Requester, vnode: str) -> dict[str, Any]:
        """Lift ``vnode``'s CPU limit (every core, full speed); NotFound if none."""
        return self._request("DELETE", f"/vnodes/{vnode}/cpu", wait=60)  # type: ignore[no-any-return]

    def vcpu_info(self: _Requester, vnode: str) -> dict[str, Any]:
        """``{'cores', 'frequency', 'pcores'}``; NotFound if ``vnode`` has no CPU limit."""
        return self._request("GET", f"/vnodes/{vnode}/cpu")  # type: ignore[no-any-return]

    def vmem_create(
        self: _Requester,
        vnode: str,
        mem: int | str,
        swap: int | str | None = None,
        hierarchy: str | None = None,
    ) -> dict[str, Any]:
        """Limit ``vnode``'s memory to ``mem`` (a bare number is MiB, as Distem's MB; or
        ``512MiB``, ``1g``) and its swap to ``swap`` on top of it. ``hierarchy`` (Distem's
        ``v1``/``v2``) is accepted and ignored: the pnode's own cgroup version is used.
        AlreadyExists when it has a memory limit (use vmem_update)."""
        body = {"limit": mem, "swap": swap}
        return self._request("POST", f"/vnodes/{vnode}/memory", body, wait=60)  # type: ignore[no-any-return]

    def vmem_update(self: _Requester, vnode: str, desc: dict[str, Any]) -> dict[str, Any]:
        """Change the memory limit: ``desc`` ``{'mem': 256, 'swap': 512, 'soft_limit': 128}``
        (Distem's keys) or ``{'limit': '256MiB', 'swap': '512MiB', 'soft': '128MiB'}``;
        creates it when there is none."""
        names = {"mem": "limit", "soft_limit": "soft", "hard_limit": "limit"}
        body = {names.get(k, k): v for k, v in desc.items() if k != "hierarchy"}
        return self._request("PUT", f"/vnodes/{vnode}/memory", body, wait=60)  # type: ignore[no-any-return]

    def vmem_remove(self: _Requester, vnode: str) -> dict[str, Any]:
        """Lift ``vnode``'s memory limit; NotFound if none."""
        return self._request("DELETE", f"/vnodes/{vnode}/memory", wait=60)  # type: ignore[no-any-return]

    def vmem_info(self: _Requester, vnode: str) -> dict[str, Any]:
        """``{'limit', 'swap'}``; NotFound if ``vnode`` has no memory limit."""
        return self._request("GET", f"/vnodes/{vnode}/memory")  # type: ignore[no-any-return]

    def vdisk_set(
        self: _Requester,
        vnode: str,
        read: int | str | None = None,
        write: int | str | None = None,
        read_iops: int | None = None,
        write_iops: int | None = None,
        device: str | None = None,
    ) -> list[dict[str, Any]]:
        """Throttle ``vnode``'s block I/O on ``device`` (default: the disk holding its
        rootfs) to ``read``/``write`` bytes per second (``10MiB``; a bare number is bytes)
        and ``read_iops``/``write_iops`` operations per second; replaces every throttle
        it had. Live if it runs. For several devices, PUT a list to
        ``/vnodes/{vnode}/disk``."""
        fields = {
            "device": device,
            "read": read,
            "write": write,
            "read_iops": read_iops,
            "write_iops": write_iops,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return self._request("PUT", f"/vnodes/{vnode}/disk", body, wait=60)  # type: ignore[no-any-return]

    def vdisk_remove(self: _Requester, vnode: str) -> list[dict[str, Any]]:
        """Lift every disk throttle of ``vnode``; NotFound if none."""
        return self._request("DELETE", f"/vnodes/{vnode}/disk", wait=60)  # type: ignore[no-any-return]

    def vdisk_info(self: _Requester, vnode: str) -> list[dict[str, Any]]:
        """The disk throttles of ``vnode``; NotFound if none."""
        return self._request("GET", f"/vnodes/{vnode}/disk")  # type: ignore[no-any-return]

    def vnode_limits(self: _Requester, vnode: str) -> dict[str, Any]:
        """Limits, the pnode cores the vnode holds (``pcores``), the pnode's cores and MHz,
        and ``usage`` (``cpu_ns``, ``memory_bytes``, ``oom_kills``, ``throttled``,
        ``disk_read_bytes``, ``disk_write_bytes``)."""
        return self._request("GET", f"/vnodes/{vnode}/limits")  # type: ignore[no-any-return]
