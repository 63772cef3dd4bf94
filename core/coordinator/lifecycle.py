"""Vnode lifecycle of the coordinator: start, stop, freeze, unfreeze, remove.

Each operation takes the coordinator's lock to pick the vnodes and their pnodes,
fans the work out to the pnode agents in parallel (one call per pnode, outside the
lock), then records every vnode's new status or error. A pnode that fails as a
whole marks all of its vnodes with its error; the others go on.

:class:`Lifecycle` is a mixin of :class:`pydistem.coordinator.service.Coordinator`.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pydistem.coordinator import networks, vroutes
from pydistem.errors import PydistemError, ValidationError
from pydistem.model.specs import VNode

if TYPE_CHECKING:
    from pydistem.coordinator.agents import AgentLink
    from pydistem.model.addressing import AddressPool


class Lifecycle:
    """Start/stop/freeze/unfreeze/remove of vnodes, for the Coordinator."""

    vnodes: dict[str, VNode]
    failures: dict[str, str]
    pools: dict[str, AddressPool]
    _lock: threading.RLock
    _fanout: ThreadPoolExecutor

    if TYPE_CHECKING:  # provided by the Coordinator

        def link(self, pnode_id: str) -> AgentLink: ...
        def _names(self, names: list[str] | None) -> list[str]: ...
        def _save_vnodes(self, names: list[str]) -> None: ...
        def etc_hosts(self) -> str: ...

    def _by_host(self, names: list[str]) -> dict[str, list[VNode]]:
        groups: dict[str, list[VNode]] = defaultdict(list)
        for n in names:
            v = self.vnodes[n]
            groups[str(v.host)].append(v)
        return groups

    def _fan(
        self,
        groups: dict[str, Any],
        fn: Callable[[str, Any], dict[str, str | None]],
    ) -> dict[str, str | None]:
        """Call ``fn(pnode, payload)`` for every pnode in parallel; merge results.

        A pnode that fails as a whole marks all of its vnodes with its error.
        """

        def one(item: tuple[str, Any]) -> dict[str, str | None]:
            host, payload = item
            try:
                return fn(host, payload)
            except PydistemError as exc:
                names = [p.name if isinstance(p, VNode) else p for p in payload]
                return dict.fromkeys(names, exc.message)

        results: dict[str, str | None] = {}
        for part in self._fanout.map(one, list(groups.items())):
            results.update(part)
        return results

    def _check_images(self, names: list[str]) -> None:
        """ValidationError, before anything changes, when one of the vnodes has no image
        and its pnode's runtime needs one (a vnode may be created without one)."""
        for host, vs in self._by_host(
            [n for n in names if self.vnodes[n].vfilesystem is None]
        ).items():
            try:
                self.link(host).check_vnodes(vs, starting=True)
            except ValidationError as exc:
                raise ValidationError(exc.field.split(".", 1)[-1], exc.reason) from None

    def vnodes_start(self, names: list[str] | None = None) -> dict[str, str | None]:
        """Start vnodes on their pnodes, in parallel. Returns name -> error or None.
        Raises ValidationError (and starts none) when a vnode has no image its runtime
        needs."""
        with self._lock:
            names = self._names(names)
            todo = [n for n in names if self.vnodes[n].status != "RUNNING"]
            self._check_images(todo)
            for n in todo:
                self.vnodes[n].status = "CONFIGURING"
                self.failures.pop(n, None)
            groups = self._by_host(todo)
            hosts_file = self.etc_hosts()
            specs = {h: [v.model_copy(deep=True) for v in vs] for h, vs in groups.items()}
            try:
                builds, plan_error = networks.build_plan(self, groups), None
            except PydistemError as exc:  # e.g. a pnode's VXLAN endpoint is unknown
                builds, plan_error = {}, exc.message
            for h in builds:
                specs.setdefault(h, [])  # member pnodes that only get new VXLAN peers
            routes = vroutes.plans(self, todo)
            members = dict(
                Counter(i.vnetwork for v in self.vnodes.values() for i in v.vifaces if i.vnetwork)
            )

        def start(host: str, vs: list[VNode]) -> dict[str, str | None]:
            if plan_error is not None:
                return {v.name: plan_error for v in vs}
            link = self.link(host)
            for vnet, peers in builds.get(host, []):
                link.vnetwork_create(vnet, peers)
            if not vs:
                return {}
            for v in vs:
                v.status = "RUNNING"
            results = link.vnodes_start(vs, hosts_file, members)
            plan = {n: p for n, p in routes.get(host, {}).items() if results.get(n) is None}
            if plan:
                for n, err in link.vnodes_routes(plan).items():
                    results[n] = results.get(n) or err
            return results

        results = self._fan(specs, start)
        with self._lock:
            for n in todo:
                err = results.get(n)
                if n not in self.vnodes:
                    continue
                self.vnodes[n].status = "FAILED" if err else "RUNNING"
                if err:
                    self.failures[n] = err
            self._save_vnodes(todo)
        return {n: results.get(n) for n in names}

    def _simple(
        self, names: list[str] | None, action: str, status: str, allowed: tuple[str, ...]
    ) -> dict[str, str | None]:
        with self._lock:
            names = self._names(names)
            todo = [n for n in names if self.vnodes[n].status in allowed]
            groups = {h: [v.name for v in vs] for h, vs in self._by_host(todo).items()}

        def act(host: str, ns: list[str]) -> dict[str, str | None]:
            link = self.link(host)
            if action == "stop":
                return link.vnodes_stop(ns)
            if action in ("freeze", "unfreeze"):
                return link.vnodes_freeze(ns, action == "freeze")
            return link.vnodes_remove(ns)

        results = self._fan(groups, act)
        with self._lock:
            for n in todo:
                err = results.get(n)
                if err:
                    self.failures[n] = err
                elif action == "remove":
                    self._forget(n)
                else:
                    self.vnodes[n].status = status  # type: ignore[assignment]
            self._save_vnodes(todo)
        return {n: results.get(n) for n in names}

    def _forget(self, name: str) -> None:
        v = self.vnodes.pop(name)
        self.failures.pop(name, None)
        for vif in v.vifaces:
            if vif.vnetwork in self.pools and vif.address:
                self.pools[vif.vnetwork].release(vif.address)

    def vnodes_stop(self, names: list[str] | None = None) -> dict[str, str | None]:
        return self._simple(names, "stop", "DOWN", ("RUNNING", "FROZEN", "FAILED", "CONFIGURING"))

    def vnodes_freeze(self, names: list[str] | None = None) -> dict[str, str | None]:
        return self._simple(names, "freeze", "FROZEN", ("RUNNING",))

    def vnodes_unfreeze(self, names: list[str] | None = None) -> dict[str, str | None]:
        return self._simple(names, "unfreeze", "RUNNING", ("FROZEN",))

    def vnodes_remove(self, names: list[str] | None = None) -> dict[str, str | None]:
        """Remove vnodes everywhere (stopping them first). Never-started ones just vanish."""
        with self._lock:
            names = self._names(names)
            unbuilt = [n for n in names if self.vnodes[n].status == "INIT"]
            for n in unbuilt:
                self._forget(n)
            self._save_vnodes(unbuilt)
        built = [n for n in names if n not in unbuilt]
        results = self._simple(
            built, "remove", "", ("RUNNING", "DOWN", "FROZEN", "FAILED", "CONFIGURING")
        )
        return {**dict.fromkeys(unbuilt), **results}
