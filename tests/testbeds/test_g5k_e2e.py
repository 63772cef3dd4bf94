"""``distem deploy examples/g5k.yaml`` end to end against a stand-in Grid'5000 built on a
host bed (tests/testbeds/g5k_bed.py): real execo, real SSH through an access gateway, real
bootstrap, real agents.

The example file is used as it is, plus the ``bootstrap:`` block that hosts sharing one
file system need. Its vnetwork takes the /22 that g5k-subnets reserved with the job: every
vnode address must be inside it, and with VXLAN across the two nodes every vnode must
reach every other. It also gets the site gateway as its ``gateway``: every vnode's
default route points to it (onlink); the stand-in site has no router behind it, and over
VXLAN it would not be on the vnodes' segment anyway (docs/networks.md).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from tests.testbeds.g5k_bed import TOKEN, g5k_site

pytestmark = [pytest.mark.testbeds, pytest.mark.kernel, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SITE_GATEWAY = "10.159.255.254"  # what the stand-in's g5k-subnets -a prints (Rennes /14)


def test_deploy_examples_g5k_against_the_standins(
    kernel_unchanged: object, hostbed, tmp_path: Path
) -> None:
    doc = yaml.safe_load((ROOT / "examples" / "g5k.yaml").read_text())
    with g5k_site(hostbed, tmp_path) as site:
        run = "ip -4 -o addr show if0; ip -4 route show default"
        res = site.deploy(site.platform(doc), "--run", run)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        # reserved through OAR (real execo), deployed, bootstrapped through the gateway
        assert "submitting an OAR job to rennes" in out and "kadeploy3 debian12-min" in out, out
        assert f"reserved g5k-{1894417}" in out
        assert "coordinator http://" in out
        # the subnet g5k-subnets printed for the job became the vnetwork's
        [job] = site.frontend.jobs().values()
        [reserved] = job["subnets"]
        assert f"vnetwork vnet: {reserved}" in out, out
        # and the site gateway g5k-subnets printed became its gateway: every vnode's default
        # route, onlink (the gateway is in the site's /14, outside the reserved /22)
        assert f"default route via {SITE_GATEWAY} (the gateway g5k routes it through)" in out
        defaults = re.findall(r"default via (\S+) dev if0 (?:proto \w+ )?onlink", res.stdout)
        assert defaults == [SITE_GATEWAY] * 4, res.stdout
        addresses = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/(\d+)", res.stdout)
        assert len({a for a, _ in addresses}) == 4, res.stdout
        net = ipaddress.ip_network(reserved)
        assert all(ipaddress.ip_address(a) in net for a, _ in addresses), (reserved, addresses)
        assert {p for _, p in addresses} == {str(net.prefixlen)}
        assert doc["vnetworks"][0]["network_type"] == "vxlan"
        assert "✗" not in res.stdout and "✓" in res.stdout  # ping matrix: every pair
        # the job was released, nothing is saved, the password showed nowhere
        assert sorted(job["types"]) == ["deploy", "origin=execo"]
        assert site.frontend.jobs()[str(job["id"])]["state"] == "Error"
        assert re.search(r"released\s*│\s*True", res.stderr), res.stderr
        assert not list((tmp_path / "cli-state" / "reservations").glob("*.json"))
        assert all(q["auth"] for q in site.world.requests) and site.world.requests
        assert TOKEN not in out + site.logs()
        # the vnodes were spread over both nodes (column "host" of the vnodes table)
        rows = [
            [c.strip() for c in line.split("│")]
            for line in res.stdout.splitlines()
            if line.startswith("│ node-") and "RUNNING" in line
        ]
        assert len(rows) == 4 and len({r[3] for r in rows}) == 2, res.stdout
