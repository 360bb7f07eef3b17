"""batou provisioner that delegates to the devhost binary.

batou selects it with ``method = devhost`` in a ``[provisioner:NAME]``
section (entry point group ``batou.provisioners``). All work is done by
``devhost``; this module only translates batou's provisioner calls into
``devhost`` command lines (argument lists, never a shell) and reads its JSON.
"""

import json
import os
import subprocess

from batou import output
from batou.provision import Provisioner

__all__ = ["DevhostProvisioner", "DevhostError"]


class DevhostError(Exception):
    """A devhost command failed; its own message is in ``str(self)``."""

    def __init__(self, argv, returncode, stderr=""):
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip() or "see its output above"
        super().__init__(
            "`{}` failed with exit status {}: {}".format(
                " ".join(argv), returncode, detail
            )
        )

    def report(self):
        # batou calls report() on exceptions it collects.
        output.error(str(self))

    def should_merge(self, other):
        return False


def devhost_program():
    return os.environ.get("DEVHOST", "devhost")


class DevhostProvisioner(Provisioner):
    """Provision containers on a devhost by running ``devhost``."""

    target_host = None
    channel = None

    def __init__(self, name):
        super().__init__(name)
        self._results = None  # host name (in environment) -> result dict

    @classmethod
    def from_config_section(cls, name, section):
        instance = cls(name)
        instance.target_host = section["host"]
        instance.channel = section.get("channel")
        return instance

    # batou's provisioner API

    def configure_host(self, host, config):
        # As batou's container provisioner: every alias is public as
        # <alias>.<real name>.<devhost>.
        host.aliases.update(
            {
                alias.strip(): "{}.{}.{}".format(
                    alias, host.name, self.target_host
                )
                for alias in config.get("provision-aliases", "").split()
            }
        )

    def suggest_name(self, name):
        out = self._run(
            ["reserve", "--devhost", self.target_host, "--json"],
            cwd=os.getcwd(),
        )
        return json.loads(out)["name"]

    def provision(self, host):
        environment = host.environment
        if self._results is None:
            mine = [
                h._name
                for h in environment.hosts.values()
                if h.provisioner is self
            ]
            argv = ["up", environment.name, "--json"]
            argv += ["--root", environment.base_dir]
            if self.rebuild:
                argv.append("--rebuild")
            for name in mine:
                argv += ["--host", name]
            result = json.loads(self._run(argv, cwd=environment.base_dir))
            self._results = {h["host"]: h for h in result["hosts"]}
        if host._name not in self._results:
            raise DevhostError(
                ["devhost", "up", environment.name],
                0,
                "devhost did not report host {}".format(host._name),
            )
        for warning in self._results[host._name].get("warnings") or []:
            output.annotate("    warning: {}".format(warning), yellow=True)

    def summarize(self, host):
        for alias, fqdn in host.aliases.items():
            output.line(" 🌐 https://{}/".format(fqdn))

    # helpers

    def _run(self, argv, cwd):
        argv = [devhost_program()] + argv
        output.annotate("    {}".format(" ".join(argv)), debug=True)
        # stderr (progress, provision.sh's output, errors) goes to the
        # terminal as it happens; stdout is devhost's JSON.
        proc = subprocess.run(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=None,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if proc.returncode != 0:
            raise DevhostError(argv, proc.returncode)
        return proc.stdout.decode("utf-8")
