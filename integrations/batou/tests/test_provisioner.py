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
    want = ["up", "dev", "--json", "--progress=json", "--root", str(root)]
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


def test_provision_shows_devhosts_progress_through_batou_output(deployment):
    root, _ = deployment
    env = load(root)
    from batou import output
    from batou._output import TestBackend

    backend = TestBackend()
    old = output.backend
    output.backend = backend
    try:
        web = env.get_host("web")
        web.provisioner.provision(web)
    finally:
        output.backend = old
    lines = backend.output.splitlines()
    web_lines = [l.strip() for l in lines if l.strip().startswith("web:")]
    assert web_lines == [
        "web: request validated (0.1s)",
        "web: building the container's system: building '/nix/store/x.drv'... (0.9s)",
        # the second build line came within 10s: not repeated
        "web: waiting for the host rebuild (shared by 2 requests) (2.0s)",
        "web: done (1m05s)",
    ]
    assert any(l.strip().startswith("fixed: done") for l in lines)
    # Other stderr lines pass through as they are.
    assert "  web| provisioned" in lines
    # No JSON reaches the user.
    assert not [l for l in lines if '"devhost"' in l]


def test_parse_progress_ignores_other_lines():
    from batou_devhost import format_event, parse_progress

    assert parse_progress("sudo: a password is required") is None
    assert parse_progress('{"name": "x"}') is None
    assert parse_progress('{"devhost": "progress"}') is None
    e = parse_progress(
        '{"devhost":"progress","phase":"building","host":"web\\u001b[2J",'
        '"detail":"x\\u0007y","elapsed_ms":12000}'
    )
    assert format_event(e) == "web [2J: building the container's system: x y (12s)"
