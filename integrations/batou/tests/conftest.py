import json
import os
import stat
import sys
import textwrap

import pytest

# The plugin of this tree, not a copy installed in the virtualenv earlier.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

FAKE_DEVHOST = r'''#!{python}
"""A stand-in for the devhost binary: records its argv, answers like devhost."""
import json, os, sys
with open(os.environ["FAKE_DEVHOST_LOG"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\n")
args = sys.argv[1:]
if os.environ.get("FAKE_DEVHOST_FAIL"):
    sys.stderr.write("devhost: " + os.environ["FAKE_DEVHOST_FAIL"] + "\n")
    sys.exit(2)
if args[:1] == ["reserve"]:
    n = int(os.environ.get("FAKE_DEVHOST_N", "0"))
    state = os.environ["FAKE_DEVHOST_LOG"] + ".n"
    if os.path.exists(state):
        n = int(open(state).read())
    open(state, "w").write(str(n + 1))
    print(json.dumps({{"name": "a%010d" % (n + 1)}}))
elif args[:1] == ["up"]:
    hosts = [args[i + 1] for i, a in enumerate(args) if a == "--host"]
    if "--progress=json" in args:
        for h in hosts:
            for phase, ms, extra in [("validated", 100, {{}}), ("building", 900, {{"detail": "building '/nix/store/x.drv'..."}}),
                                     ("building", 1500, {{"detail": "copying path"}}), ("waiting", 2000, {{"shared": 2}}),
                                     ("done", 65000, {{}})]:
                e = {{"devhost": "progress", "phase": phase, "host": h, "container": h, "elapsed_ms": ms}}
                e.update(extra)
                sys.stderr.write(json.dumps(e) + "\n")
        sys.stderr.write("  " + hosts[0] + "| provisioned\n")
        sys.stderr.flush()
    mapping = json.load(open(os.path.join(args[args.index("--root") + 1], "environments", args[1], "hostmap.json")))
    print(json.dumps({{"environment": args[1], "hosts": [
        {{"host": h, "name": mapping.get(h, h), "state": "running", "urls": [], "warnings": []}}
        for h in hosts]}}))
else:
    sys.exit(3)
'''

ENVIRONMENT_CFG = """\
[environment]
service_user = s-shop
update_method = rsync

[provisioner:default]
method = devhost
host = dev.example.com
channel = https://example.com/nixexprs.tar.xz

[host:web]
provision-dynamic-hostname = True
provision-aliases =
    shop
    admin
components = hello

[host:fixed]
components = hello

[host:legacy]
provisioner = none
components = hello
"""

COMPONENT = """\
from batou.component import Component

class Hello(Component):
    pass
"""


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """A batou deployment root using method = devhost, and a fake devhost."""
    root = tmp_path / "deploy"
    (root / "environments" / "dev").mkdir(parents=True)
    (root / "environments" / "dev" / "environment.cfg").write_text(ENVIRONMENT_CFG)
    (root / "components" / "hello").mkdir(parents=True)
    (root / "components" / "hello" / "component.py").write_text(COMPONENT)
    fake = tmp_path / "devhost"
    fake.write_text(FAKE_DEVHOST.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "devhost.log"
    monkeypatch.setenv("DEVHOST", str(fake))
    monkeypatch.setenv("FAKE_DEVHOST_LOG", str(log))
    monkeypatch.chdir(root)

    def calls():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return root, calls
