#!/usr/bin/env python3
"""Listing 1 of the Distem porting report (a Ruby Distem client script), ported line by line.

The Ruby original, for reference, next to each Python line below::

    require 'distem'
    Distem.client do |cl|
      cl.vnetwork_create('vnetwork', '10.144.0.0/22')
      cl.pnode_init(pnodes)
      desc = { 'host' => pnodes.first,
               'vfilesystem' => { 'image' => IMAGE, 'shared' => true },
               'vifaces' => [{ 'name' => 'if0', 'vnetwork' => 'vnetwork' }] }
      cl.vnodes_create(nodes, desc)
      cl.vnodes_start(nodes)
      cl.wait_vnodes
      nodes.each { |n| puts cl.vnode_execute(n, 'hostname') }
    end

Run it against a coordinator (``distemd -d``, or one started by ``distem deploy``)::

    python3 examples/listing1.py [IMAGE_URL] [PNODE ...]

IMAGE_URL defaults to the busybox image of the Quick start
(``distem image build`` writes it). The platform is left running; ``distem clean``
removes it.
"""

from __future__ import annotations

import sys

import pydistem

IMAGE = sys.argv[1] if len(sys.argv) > 1 else "file:///var/lib/pydistem/images/busybox.tar.gz"
pnodes = sys.argv[2:] or ["localhost"]
nodes = ["node-1", "node-2", "node-3"]

with pydistem.client() as cl:  # Distem.client do |cl|
    cl.vnetwork_create("vnetwork", "10.144.0.0/22")
    cl.pnode_init(pnodes)
    desc = {
        "host": pnodes[0],
        "vfilesystem": {"image": IMAGE, "shared": True},
        "vifaces": [{"name": "if0", "vnetwork": "vnetwork"}],
    }
    cl.vnodes_create(nodes, desc)
    cl.vnodes_start(nodes)
    if not cl.wait_vnodes():  # true once every vnode answers
        sys.exit(f"vnodes not ready: {cl.pending_vnodes}")
    for n in nodes:  # nodes.each { |n| puts cl.vnode_execute(n, 'hostname') }
        print(cl.vnode_execute(n, "hostname").stdout, end="")
