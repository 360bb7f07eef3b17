"""Load environments with batou itself and print its model as JSON.

Used by TestAgainstBatou (batou_test.go) when a python3 with batou 2.4
(the last release with the fc-nixos-dev-container provisioner) is available.
Reads a JSON list of cases {"name", "cfg", "hostmap"} on stdin and prints a
JSON list of results, one per case, in the same order.

Dynamic names come from a deterministic stand-in for the provisioner's
suggest_name (which would ssh to the devhost): "s" + the first 10 hex
digits of md5(name in environment). DNS lookups are disabled.
"""

import hashlib
import json
import os
import sys
import tempfile

try:
    import batou.environment
    import batou.provision
    import batou.utils
    from batou.environment import Config, Environment, parse_host_components

    batou.provision.FCDevContainer
except (ImportError, AttributeError) as e:
    # Tell the test to skip: this python has no batou 2.4.
    json.dump({"unavailable": "%s: %s" % (type(e).__name__, e)}, sys.stdout)
    sys.exit(0)


def suggest_name(self, name):
    return "s" + hashlib.md5(name.encode()).hexdigest()[:10]


def no_dns(*args, **kw):
    raise OSError("no DNS in tests")


batou.provision.FCDevContainer.suggest_name = suggest_name
batou.utils.resolve = no_dns
batou.utils.resolve_v6 = no_dns

IGNORED = {"MissingComponent", "SuperfluousComponentSection"}


def run(case):
    root = tempfile.mkdtemp()
    envdir = os.path.join(root, "environments", case["name"])
    os.makedirs(envdir)
    with open(os.path.join(envdir, "environment.cfg"), "w") as f:
        f.write(case["cfg"])
    if case["hostmap"] is not None:
        with open(os.path.join(envdir, "hostmap.json"), "w") as f:
            f.write(case["hostmap"])
    os.chdir(root)
    env = Environment(case["name"], basedir=root)
    result = {"load_error": None}
    try:
        env.load()
    except Exception as e:  # batou's own error: compare the fact only
        result["load_error"] = type(e).__name__
    result["exceptions"] = sorted(
        type(e).__name__
        for e in env.exceptions
        if type(e).__name__ not in IGNORED
    )
    hosts = []
    for host in env.hosts.values():
        try:
            prov = host.provisioner
            prov = prov.name if prov else None
        except KeyError:
            prov = "<missing>"
        hosts.append(
            {
                "name": host._name,
                "real": host.name,
                "ignore": bool(host.ignore),
                "platform": host.platform,
                "service_user": host.service_user,
                "provisioner": prov,
                "remap": bool(host.remap),
                "aliases": list(host.aliases.keys()),
                "data": host.data,
            }
        )
    result["hosts"] = hosts
    provisioners = {}
    for name, p in env.provisioners.items():
        provisioners[name] = {"host": p.target_host, "channel": p.channel}
    result["provisioners"] = provisioners
    result["settings"] = {
        k: getattr(env, k)
        for k in [
            "service_user",
            "host_domain",
            "branch",
            "update_method",
            "platform",
            "timeout",
            "repository_url",
            "jobs",
        ]
    }
    # Component lists as batou parses them (no component.py needed).
    components = {}
    config = Config(os.path.join(envdir, "environment.cfg"))
    for literal in config.get("hosts", {}):
        components[literal.lstrip("!")] = parse_host_components(
            config["hosts"].as_list(literal)
        )
    for section in config:
        if section.startswith("host:") and "components" in config[section]:
            components[section.replace("host:", "", 1)] = parse_host_components(
                config[section].as_list("components")
            )
    result["components"] = components
    path = os.path.join(envdir, "hostmap.json")
    result["hostmap"] = open(path).read() if os.path.exists(path) else None
    return result


def main():
    cases = json.load(sys.stdin)
    out = []
    for case in cases:
        try:
            out.append(run(case))
        except Exception as e:
            out.append({"load_error": "script: %s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout)


main()
