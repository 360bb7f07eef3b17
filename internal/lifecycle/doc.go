// Package lifecycle runs containers on a devhost: ensure, destroy, cleanup,
// keep, status and import, and the host rebuild that applies the generated
// set. The package neither prints nor logs: results are returned, and the
// external commands run through a runner.Runner the caller configures.
//
// # Ensure
//
// Validate checks a request completely before anything is locked or
// changed. Ensure (ensure.go) then, holding the container's operation
// lock, runs these steps, each a method of Host on one ensureRun:
//
//  0. settleDestroyed: applies the removal of a destroyed container of the
//     same name whose destroy died before its rebuild;
//  1. prepare, without any lock: resolves the channel and evaluates its
//     NixOS release when the entry needs a state version;
//  2. plan, under the registry lock: recoverBefore undoes what crashed
//     operations left; authorize checks the caller against the entry (or
//     a `devhost reserve` reservation); an intent is recorded; planEntry
//     makes the entry (newEntry allocates a new container's address, the
//     only place an ensure does); stage writes its provision.nix and its
//     configuration.nix (rendered by the generator) to
//     <state>/lifecycle/build/<name>/ and decides whether to build: when
//     its inputs (channel, configuration, provision.nix) changed;
//  3. buildStep, without any lock: builds the container's system with
//     restricted evaluation and only the channel, the configuration and
//     provision.nix on the search path;
//  4. commit, under the registry lock: installProfile installs it as the
//     profile (nix-env --set); the entry is written and the intent dropped;
//     countChange counts the change and records it as a request
//     (requests/<name>.json: the entry, provision.nix and profile before,
//     the entry after) until a rebuild applies it;
//  5. wait: waits for a host rebuild containing the change (see below);
//  6. run: starts the container's unit, or, when it runs and its
//     addresses or limits changed, restarts it (the unit is an instance of
//     NixOS' container@ template, which the host's switch leaves running as
//     it is), or, when it runs and only its system changed, switches it with
//     `systemctl reload container@NAME` (NixOS' container unit reloads by
//     running the profile's switch-to-configuration inside the container);
//     nothing happens to a running container whose system is unchanged.
//     For the same reason destroy and cleanup stop the units themselves,
//     and purge stops a unit before it removes the container's remains;
//     and the rebuild's leader, once its rebuild succeeded, try-restarts
//     the running containers whose addresses or limits it changed without
//     an ensure of their own in the batch (a changed host configuration:
//     default limits, IPv6, the host address), comparing the
//     generator.UnitPart of their host files before and after. An ensure
//     compares the same for its own container.
//
// A failure in plan, buildStep or commit is undone by abort from the
// intent; from commit on the change stands, and a failed rebuild is rolled
// back by the rebuild (see Rebuilds).
//
// The configuration is built from a staged copy rather than from the live
// generated set because the live set is only ever written by a rebuild, from
// a registry snapshot, under the rebuild lock: the host's evaluation (ours,
// or the platform agent's) never reads a set that is half old, half new, or
// that declares a container whose profile does not exist yet.
//
// # Rebuilds
//
// Every committed registry change bumps a "wanted" generation under the
// registry lock; nothing is rendered there. A request waits until the
// "applied" generation reaches the wanted one it saw after its change. The
// first waiter to take the rebuild lock is the leader: when no rebuild ran
// (the lock was free) it first holds the lock for the batch window
// (commands.rebuild_batch_window, 300ms by default), and for another
// window while requests keep being committed (at most maxBatchWindows), so
// requests arriving together share one rebuild, at the price of one window
// of delay for a lone request; requests arriving while a rebuild runs are
// batched by the wait anyway. A waiter checks the applied generation
// between its attempts at the lock (flock grants it in no order): once a
// rebuild applied its change it returns, rather than waiting through the
// rebuild of the next leader, which may have taken the lock first. The
// leader then gathers what is pending: under the registry lock
// it lists the registry and compares each file's identity (inode, size,
// mtime) with the set index (rebuild/index.log, what the live set was
// written from, a log each rebuild appends its changed rows to) and reads
// only the entries that changed; it renders those,
// compares their files, the index (default.nix, when names came or went)
// and the status page with the live set, and patches only what differs:
// each file through a temporary file and a rename, in an order that keeps
// every state in between a set the host's evaluation can read (new files,
// then default.nix, then removals), the changed directories fsynced once.
// Before the patch, the previous content of every file it changes is
// recorded in the set journal (rebuild/journal.json); the journal makes the
// change whole: a failed rebuild patches the previous contents back, and
// so does the next rebuild after a killed one. The live set outside a
// journal's files is what the host applied; the applied state of a
// container is its file in the live set (or the journal's previous
// content while one exists), not a copy of the registry. Without an index,
// under other templates or host configuration (the index records a render
// key), or with an overridden default.nix, the leader renders everything
// and makes the live set exactly that render; `devhost apply --full` asks
// for that, and its output is byte for byte the incremental one. When no
// host-side file (default.nix, containers/) changed, the rebuild command
// does not run.
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
// A process killed at any instant leaves: an intent (intents/<name>.json) whose
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
// marker, which makes the next registry-lock holder count a generation
// (the rebuild finds the change by its file's identity); or a set journal
// of a killed rebuild, which the next rebuild patches back before it
// starts (or, when the dead one recorded its success, drops with the set
// index, so the next rebuild compares everything). Temporary
// files of interrupted atomic writes are removed under the lock that guards
// their directory: in the registry-lock directories by the next holder
// that finds the registry-section marker (their writer held the section),
// and by every Sync and Cleanup. A rebuilder killed after recording its failure but
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
