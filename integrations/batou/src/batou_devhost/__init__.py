"""batou provisioner that delegates to the devhost binary.

batou selects it with ``method = devhost`` in a ``[provisioner:NAME]``
section (entry point group ``batou.provisioners``). All work is done by
``devhost``; this module only translates batou's provisioner calls into
``devhost`` command lines (argument lists, never a shell) and reads its JSON.
"""

import json
import os
import subprocess
import threading

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
            argv = ["up", environment.name, "--json", "--progress=json"]
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
        # stdout is devhost's JSON, read aside; stderr (progress as JSON
        # lines, provision.sh's output, errors) is shown as it comes,
        # through batou's output.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        out = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))
        reader.start()
        shown = ProgressLines()
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            event = parse_progress(line)
            if event is None:
                output.line(line)
                continue
            text = shown.update(event)
            if text is not None:
                output.annotate("    " + text)
        reader.join()
        proc.stderr.close()
        if proc.wait() != 0:
            raise DevhostError(argv, proc.returncode)
        return out[0].decode("utf-8")


# What devhost's progress phases mean (see docs/up.md, "Progress").
PHASES = {
    "validated": "request validated",
    "building": "building the container's system",
    "built": "system built",
    "waiting": "waiting for the host rebuild",
    "applied": "host rebuild done",
    "starting": "starting the container",
    "provisioning": "provisioning",
    "done": "done",
    "failed": "failed",
}

# A phase that reports again and again (each line of Nix's build log) is
# shown at most this often, in seconds of its elapsed time.
REPEAT_EVERY = 10.0


def parse_progress(line):
    """The event of one `--progress=json` line, or None for other lines."""
    line = line.strip()
    if not line.startswith("{") or len(line) > 16384:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("devhost") != "progress":
        return None
    if not isinstance(event.get("phase"), str):
        return None
    return event


def _printable(value):
    return "".join(c if c.isprintable() else " " for c in str(value or ""))


def format_elapsed(seconds):
    if seconds < 10:
        return "{:.1f}s".format(seconds)
    if seconds < 60:
        return "{}s".format(int(seconds))
    return "{}m{:02d}s".format(int(seconds // 60), int(seconds) % 60)


def format_event(event):
    """One line for people: 'web: waiting for the host rebuild (shared by
    2 requests) (14s)'."""
    phase = _printable(event["phase"])
    text = PHASES.get(phase, phase)
    shared = event.get("shared") or 0
    if phase == "waiting" and isinstance(shared, int):
        if shared == 1:
            text += " (this request alone)"
        elif shared > 1:
            text += " (shared by {} requests)".format(shared)
    detail = _printable(event.get("detail"))[:240]
    if detail:
        text += ": " + detail
    elapsed = event.get("elapsed_ms") or 0
    if not isinstance(elapsed, (int, float)) or elapsed < 0:
        elapsed = 0
    label = _printable(event.get("host") or event.get("container"))
    return "{}: {} ({})".format(label, text, format_elapsed(elapsed / 1000.0))


class ProgressLines(object):
    """Decides which events become lines: every change of phase (or of
    the number of requests sharing a rebuild), a repeated phase at most
    every REPEAT_EVERY seconds. batou's output is line by line, so the
    progress is plain lines, as devhost's own off a terminal."""

    def __init__(self):
        self._last = {}

    def update(self, event):
        key = event.get("host") or event.get("container")
        elapsed = (event.get("elapsed_ms") or 0) / 1000.0
        last = self._last.get(key)
        if (
            last is not None
            and last["phase"] == event["phase"]
            and last.get("shared") == event.get("shared")
            and elapsed - (last.get("elapsed_ms") or 0) / 1000.0 < REPEAT_EVERY
        ):
            return None
        self._last[key] = event
        return format_event(event)
