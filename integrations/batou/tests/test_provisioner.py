import json
from importlib.metadata import entry_points

import pytest
from batou.environment import Environment

import batou_devhost
from batou_devhost import DevhostError, DevhostProvisioner


def load(root, rebuild=False):
    env = Environment("dev", basedir=str(root), provision_rebuild=rebuild)
    env.load()
    return env


def test_registered_in_batous_entry_point_group():
    eps = entry_points(group="batou.provisioners")
    assert eps["devhost"].load() is DevhostProvisioner


def test_batou_loads_method_devhost_and_asks_devhost_for_names(deployment):
    root, calls = deployment
    env = load(root)
    assert not [e for e in env.exceptions if "devhost" in str(e).lower()]
    prov = env.provisioners["default"]
    assert isinstance(prov, DevhostProvisioner)
    assert prov.target_host == "dev.example.com"
    assert prov.channel == "https://example.com/nixexprs.tar.xz"

    # batou asked for one dynamic name; devhost reserved it on the devhost.
    assert [c["argv"] for c in calls()] == [
        ["reserve", "--devhost", "dev.example.com", "--json"]
    ]
    assert calls()[0]["cwd"] == str(root)
    web = env.get_host("web")
    assert web.name == "a0000000001"
    # batou itself remembers the name, in its own format.
    assert (root / "environments" / "dev" / "hostmap.json").read_text() == (
        '{"web": "a0000000001", "fixed": "fixed", "legacy": "legacy"}'
    )
    assert dict(web.aliases.items()) == {
        "shop": "shop.a0000000001.dev.example.com",
        "admin": "admin.a0000000001.dev.example.com",
    }
    assert env.get_host("legacy").provisioner is None

    # A second load reuses hostmap.json: no new reservation.
    load(root)
    assert len(calls()) == 1


@pytest.mark.parametrize("rebuild", [False, True])
def test_provision_runs_devhost_up_once_for_all_hosts(deployment, rebuild):
    root, calls = deployment
    env = load(root, rebuild=rebuild)
    for host in env.hosts.values():
        if host.provisioner:
            host.provisioner.provision(host)
    ups = [c for c in calls() if c["argv"][0] == "up"]
    want = ["up", "dev", "--json", "--root", str(root)]
    if rebuild:
        want.append("--rebuild")
    want += ["--host", "web", "--host", "fixed"]
    assert [c["argv"] for c in ups] == [want]


def test_summary_prints_alias_urls(deployment, capsys):
    root, _ = deployment
    env = load(root)
    web = env.get_host("web")
    from batou import output
    from batou._output import TestBackend

    backend = TestBackend()
    old = output.backend
    output.backend = backend
    try:
        web.provisioner.summarize(web)
    finally:
        output.backend = old
    assert "https://shop.a0000000001.dev.example.com/" in backend.output
    assert "https://admin.a0000000001.dev.example.com/" in backend.output


def test_failing_devhost_is_reported(deployment, monkeypatch):
    root, _ = deployment
    env = load(root)
    monkeypatch.setenv("FAKE_DEVHOST_FAIL", "dev.example.com: cannot be reached")
    web = env.get_host("web")
    with pytest.raises(DevhostError) as exc:
        web.provisioner.provision(web)
    assert exc.value.returncode == 2
    assert "failed with exit status 2" in str(exc.value)
    assert exc.value.argv[1:3] == ["up", "dev"]


def test_devhost_program_from_environment(monkeypatch):
    monkeypatch.setenv("DEVHOST", "/opt/devhost/bin/devhost")
    assert batou_devhost.devhost_program() == "/opt/devhost/bin/devhost"
    monkeypatch.delenv("DEVHOST")
    assert batou_devhost.devhost_program() == "devhost"
