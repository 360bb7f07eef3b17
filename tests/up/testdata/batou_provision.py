"""Run batou's provisioning step with batou's own code.

Usage: python batou_provision.py ROOT ENV [--rebuild]

Loads the environment with batou's Environment (which resolves dynamic
host names through the provisioner and writes hostmap.json), then calls
each provisioned host's provisioner.provision() and summarize(), as
batou's deployment does before it connects. Prints {"<host>": "<name>"}.
"""
import json
import os
import sys

from batou import output
from batou._output import TerminalBackend
from batou.environment import Environment

root, name = sys.argv[1], sys.argv[2]
rebuild = "--rebuild" in sys.argv[3:]
os.chdir(root)
output.backend = TerminalBackend()
env = Environment(name, basedir=root, provision_rebuild=rebuild)
env.load()
if env.exceptions:
    for e in env.exceptions:
        print("batou: {}: {}".format(type(e).__name__, e), file=sys.stderr)
    sys.exit(1)
for host in env.hosts.values():
    if host.provisioner:
        output.step(host.name, "Provisioning with `{}` provisioner.".format(host.provisioner.name))
        host.provisioner.provision(host)
for host in env.hosts.values():
    if host.provisioner:
        host.provisioner.summarize(host)
sys.stdout.flush()
print(json.dumps({h._name: h.name for h in env.hosts.values()}))
