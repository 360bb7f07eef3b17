// Package lifecycle runs containers on a devhost: ensure, destroy, cleanup,
// keep, status and import, and the host rebuild that applies the generated
// set. The package neither prints nor logs: results are returned, and the
// external commands run through a runner.Runner the caller configures.
//
// # Ensure
//
// Validate checks a request completely before anything is locked or
// changed. Ensure then, holding the container's operation lock:
//
//  1. under the registry lock: authorises the caller against the entry
//     (or a `devhost reserve` reservation), records an intent, reserves an
//     address for a new container, writes its provision.nix and stages its
//     configuration.nix (rendered by the generator) in
//     <state>/lifecycle/build/<name>/;
//  2. without any lock: builds the container's system when its inputs
//     (channel, configuration, provision.nix) changed, with restricted
//     evaluation and only the channel, the configuration and provision.nix
//     on the search path;
//  3. under the registry lock: installs it as the profile (nix-env --set),
//     commits the entry, drops the intent, counts the change and records
//     it as a request (requests/<name>.json: the entry, provision.nix and
//     profile before, the entry after) until a rebuild applies it;
//  4. waits for a host rebuild containing the change (see below);
//  5. starts the container's unit, or, when it runs and its system changed
//     while the host's declarations did not, switches it with `systemctl
//     reload container@NAME` (NixOS' container unit reloads by running the
//     profile's switch-to-configuration inside the container); nothing
//     happens to a running container whose system is unchanged.
//
// The configuration is built from a staged copy rather than from the live
// generated set because the live set is only ever written by a rebuild, from
// a registry snapshot, under the rebuild lock: the host's evaluation (ours,
// or the platform agent's) never reads a set that is half old, half new, or
// that declares a container whose profile does not exist yet.
//
// # Rebuilds
//
// Every registry change that alters the host side of the generated set
// (default.nix and containers/) bumps a "wanted" generation under the
// registry lock. A request waits until the "applied" generation reaches the
// wanted one it saw after its change. The first waiter to take the rebuild
// lock snapshots the registry, writes the set and runs the rebuild for
// everything wanted at that moment; the others find their generation applied
// when they get the lock. When the host side is unchanged (only a
// container's system or the status page changed) the set is written without
// running the rebuild command.
//
// A failure restores the host, not the registry. A failed rebuild is
// recorded for the generations it covered before anything is undone. Then
// the host goes back: when the rebuild had switched the host's system
// profile (its activation failed), the profile is pointed at the previous
// system, which is activated again, and the live set becomes the applied
// one. In the registry only the requests it covered (ensure, destroy, keep,
// cleanup, each with its request record) are undone: a new container's
// entry is removed, a changed one gets its previous bytes, provision.nix
// and profile back, unless the entry changed since (a later request, or an
// admin's edit, which wins). Everything else it contained had no request:
// an admin's hand edit, an import. Those entries stay as they are, with
// the failure as their last_error (cleared by the next successful
// rebuild); only destroy and cleanup ever remove an entry. Every request
// the rebuild covered gets an error naming the containers rolled back and
// kept, what became of the system, and the cause with its log
// (<state>/log/rebuild-*.log). An ensure that changed nothing host-side is
// not failed by someone else's rebuild failure.
//
// The rebuild command (and an activation of the previous system) runs in
// a process group of its own, with DEVHOST_REBUILD=<mark> in its
// environment; the mark is in the rebuild intent before the command
// starts, its group once it started. What a command that ended left in its
// group is killed at once.
//
// # Crash safety
//
// A process killed at any instant leaves: an intent (ops/<name>.json) whose
// op lock its death released, which the next command undoes (entry,
// provision.nix, profile generation, build record); a rebuild intent, which
// makes the next rebuild run even if the host side looks unchanged, and
// whose command's group and marked processes the next command to find the
// rebuild lock free kills (SIGKILL, then waiting until none is left)
// before any rebuild starts: the direct child died with its devhost
// (parent-death signal), a grandchild would not have; a purge
// marker of a destroy whose remains the next command removes once no host
// declares the container (an ensure of the same name, which holds its op
// lock, first has the removal applied and removes them itself, so a new
// container never starts on the old one's root); or the registry-section
// marker, which makes the next registry-lock holder render and count the
// whole registry. Temporary
// files of interrupted atomic writes are removed under the lock that guards
// their directory. A rebuilder killed after recording its failure but
// before rolling back leaves the failed changes in the registry, with
// their request records; the requests it covered were told it failed. The
// next forced rebuild applies them (or, failing too, undoes them), and
// Sync, Cleanup and an ensure retrying such a change count their
// generation anew rather than being answered with that old failure.
//
// # Who may do what
//
// ResolveCaller decides who the caller is (SUDO_USER when root runs devhost
// through sudo). Members of Access.Groups may create containers and change
// or destroy their own; members of Access.AdminGroup and root may act on any
// container, clean up and import. The DEVHOST_TEST_* variables that let the
// end-to-end tests play several users are honoured only by a binary built
// with the devhosttest tag, never by a real build.
package lifecycle
