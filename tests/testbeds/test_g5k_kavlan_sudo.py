"""KaVLAN and sudo-g5k end to end against the stand-in Grid'5000 (tests/testbeds/g5k_bed.py),
through the real execo code paths: ``oarsub`` with a ``{type='kavlan'}/vlan=1`` resource,
``kavlan -V`` for its id, ``kadeploy3 --vlan`` moving the nodes into it, ``kavlan -l`` to
check and name them ``-kavlan-N``; and on the standard environment (no ``deploy`` job) root
obtained through ``sudo-g5k`` on nodes that refuse root until then. Both take the vnetwork
address from the subnet g5k-subnets reserved (the vnetwork gives none)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from tests.testbeds.g5k_bed import NODES, TOKEN, G5kSite, g5k_site

pytestmark = [pytest.mark.testbeds, pytest.mark.kernel, pytest.mark.slow]


def platform(**testbed: Any) -> dict[str, Any]:
    return {
        "testbed": {
            "adapter": "g5k", "site": "rennes", "cluster": "paravance", "nodes": 2,
            "walltime": "0:30:00", "subnets": "slash_22=1", **testbed,
        },
        "vnetworks": [{"name": "vnet"}],  # no address: the reserved subnet; auto
        "vnodes": [{"name": "node-[1-4]", "runtime": "netns",
                    "vifaces": [{"name": "if0", "vnetwork": "vnet"}]}],
    }  # fmt: skip


def check_run(site: G5kSite, res: Any, job: dict[str, Any]) -> None:
    """Deployed, every vnode inside the reserved subnet and reaching every other, released."""
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    [reserved] = job["subnets"]
    net = ipaddress.ip_network(reserved)
    addresses = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/\d+", res.stdout)
    assert len(set(addresses)) == 4, res.stdout
    assert all(ipaddress.ip_address(a) in net for a in addresses), (reserved, addresses)
    assert "✗" not in res.stdout and "✓" in res.stdout, res.stdout
    assert site.frontend.jobs()[str(job["id"])]["state"] == "Error"  # oardel'ed
    assert re.search(r"released\s*│\s*True", res.stderr), res.stderr
    assert TOKEN not in out + site.logs()


def test_kavlan_nodes_are_deployed_into_the_vlan_and_reached_by_their_vlan_names(
    kernel_unchanged: object, hostbed, tmp_path: Path
) -> None:
    with g5k_site(hostbed, tmp_path) as site:
        doc = platform(environment="debian12-min", kavlan="kavlan")
        res = site.deploy(site.platform(doc), "--run", "ip -4 -o addr show if0")
        out = res.stdout + res.stderr
        [job] = site.frontend.jobs().values()
        assert "{type='kavlan'}/vlan=1" in job["resources"], job["resources"]
        vlan = job["vlan"]
        assert 4 <= vlan <= 9  # a routed KaVLAN
        assert job["vlan_nodes"] == list(NODES), job  # kadeploy3 --vlan moved them
        assert f"KaVLAN {vlan} holds 2 node(s)" in out, out
        for fqdn in NODES:  # the machines are the nodes' names in the VLAN
            short, domain = fqdn.split(".", 1)
            assert f"root@{short}-kavlan-{vlan}.{domain}" in out, out
        check_run(site, res, job)


def test_a_kavlan_that_does_not_hold_the_nodes_fails_and_deletes_the_job(
    kernel_unchanged: object, hostbed, tmp_path: Path
) -> None:
    with g5k_site(hostbed, tmp_path) as site:
        # kadeploy3 reports the nodes deployed, but the VLAN change did not happen
        site.frontend.set_fault("vlan_stuck", True)
        doc = platform(environment="debian12-min", kavlan="kavlan")
        res = site.deploy(site.platform(doc))
        out = res.stdout + res.stderr
        assert res.returncode != 0, out
        assert "not in KaVLAN" in out and NODES[0] in out, out
        [job] = site.frontend.jobs().values()
        assert job["state"] == "Error", job
        assert not list((tmp_path / "cli-state" / "reservations").glob("*.json"))


def test_standard_environment_root_through_sudo_g5k(
    kernel_unchanged: object, hostbed, tmp_path: Path
) -> None:
    with g5k_site(hostbed, tmp_path, standard=True) as site:
        bed = site.bed
        n1 = bed.hosts[2]
        ssh = ["ssh", *bed.ssh_options()]
        # a standard-environment node: the login gets in, root does not
        assert bed.operator_run([*ssh, f"alice@{n1.address}", "true"]).returncode == 0
        assert bed.operator_run([*ssh, f"root@{n1.address}", "true"]).returncode != 0
        doc = platform(gateway="root@access.grid5000.fr")
        res = site.deploy(site.platform(doc), "--run", "ip -4 -o addr show if0")
        out = res.stdout + res.stderr
        [job] = site.frontend.jobs().values()
        assert job["types"] == ["origin=execo"], job  # no deploy job, no kadeploy3
        assert "kadeploy3" not in out
        assert "root access through sudo-g5k" in out, out
        # sudo-g5k ran on both nodes (they are flagged for redeployment) and gave root
        assert job.get("redeploy") == list(NODES), (job, out)
        for node in site.nodes:
            assert bed.key.with_suffix(".pub").read_text().split()[1] in node.root_keys()
        assert f"root@{NODES[0]}" in out, out
        check_run(site, res, job)
