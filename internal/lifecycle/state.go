package lifecycle

import (
	"path/filepath"
	"time"
)

// The lifecycle keeps its own bookkeeping under <StateDir>/lifecycle/.
// Every file is written atomically; which lock guards which file is part of
// the protocol:
//
//	wanted.json        registry lock   the generation of the registry's content
//	full               registry lock   `apply --full` asked for a rebuild that renders everything
//	rebuild/applied.json   rebuild lock    the generation of the last successful rebuild
//	rebuild/index.log      rebuild lock    what the live set was written from (file identities, status rows; a log, see setindex.go)
//	rebuild/journal.json   rebuild lock    a change of the live set in progress: the files' previous contents
//	rebuild/failures.json  rebuild lock    recent failed rebuilds and the generations they covered
//	rebuild/marked.json    rebuild lock    entries a failed rebuild kept and marked (last_error)
//	rebuild/intent.json    rebuild lock    a rebuild in progress (its holder's intent)
//	rebuild.lock       (the rebuild lock: one rebuild process at a time)
//	section            registry lock   exists while a registry-lock holder changes things
//	ops/<name>.lock    (a container's operation lock, held for a whole ensure/destroy/keep)
//	intents/<name>.json  container op lock   the intent of an operation in progress (a
//	                   devhost before intents/ kept it as ops/<name>.json: ops.scanned
//	                   records the ops directory in which none was left)
//	builds/<name>.json registry lock   what the container's profile was built from
//	build/<name>/      container op lock   inputs of a container build in progress
//	purge/<name>       registry lock   a destroyed container whose remains are still to be removed
//	requests/<name>.json registry lock a request's committed change no rebuild applied yet (Request)
//	../log/            one log file per rebuild
//
// Lock order: container op lock, then rebuild lock, then registry lock. A
// registry-lock holder never waits for another lock; a rebuild-lock holder
// only takes the registry lock; op locks of other containers are only ever
// tried (never waited for) by a holder of other locks.
type paths struct{ root, state string }

func newPaths(stateDir string) paths {
	return paths{root: filepath.Join(stateDir, "lifecycle"), state: stateDir}
}

func (p paths) section() string           { return filepath.Join(p.root, "section") }
func (p paths) wanted() string            { return filepath.Join(p.root, "wanted.json") }
func (p paths) rebuildDir() string        { return filepath.Join(p.root, "rebuild") }
func (p paths) applied() string           { return filepath.Join(p.root, "rebuild", "applied.json") }
func (p paths) setIndex() string          { return filepath.Join(p.root, "rebuild", "index.log") }
func (p paths) legacySetIndex() string    { return filepath.Join(p.root, "rebuild", "index.json") }
func (p paths) setJournal() string        { return filepath.Join(p.root, "rebuild", "journal.json") }
func (p paths) fullRequest() string       { return filepath.Join(p.root, "full") }
func (p paths) failures() string          { return filepath.Join(p.root, "rebuild", "failures.json") }
func (p paths) marked() string            { return filepath.Join(p.root, "rebuild", "marked.json") }
func (p paths) rebuildIntent() string     { return filepath.Join(p.root, "rebuild", "intent.json") }
func (p paths) pendingRestarts() string   { return filepath.Join(p.root, "rebuild", "restarts.json") }
func (p paths) rebuildLock() string       { return filepath.Join(p.root, "rebuild.lock") }
func (p paths) opsDir() string            { return filepath.Join(p.root, "ops") }
func (p paths) opLock(name string) string { return filepath.Join(p.root, "ops", name+".lock") }
func (p paths) intentsDir() string        { return filepath.Join(p.root, "intents") }
func (p paths) intent(name string) string { return filepath.Join(p.root, "intents", name+".json") }
func (p paths) legacyIntent(name string) string {
	return filepath.Join(p.root, "ops", name+".json")
}
func (p paths) opsScanned() string { return filepath.Join(p.root, "ops.scanned") }
func (p paths) buildRecord(name string) string {
	return filepath.Join(p.root, "builds", name+".json")
}
func (p paths) purgeMarker(name string) string { return filepath.Join(p.root, "purge", name) }
func (p paths) requestDir() string             { return filepath.Join(p.root, "requests") }
func (p paths) request(name string) string     { return filepath.Join(p.root, "requests", name+".json") }
func (p paths) buildDir(name string) string    { return filepath.Join(p.root, "build", name) }
func (p paths) logDir() string                 { return filepath.Join(p.state, "log") }

// Wanted is the generation counter of the registry's content. Every
// committed change that may alter the generated set bumps it, under the
// registry lock, without rendering anything: the rebuild that applies a
// generation finds what changed itself (planSet).
type Wanted struct {
	Gen uint64 `json:"gen"`
}

// Applied is the generation of the last successful rebuild. What it
// applied is the live generated set itself (with the set journal's
// previous contents while a change of it is in progress): the state a
// failed rebuild returns to.
type Applied struct {
	Gen  uint64    `json:"gen"`
	Time time.Time `json:"time"`
	// Forced makes the next rebuild run even when the host-side digest is
	// unchanged: set when a rebuild was interrupted, whose outcome on the
	// host is unknown.
	Forced bool `json:"forced,omitempty"`
}

// Failure is a rebuild that failed: every request whose change has a
// generation in (From, To] was part of it and was rolled back.
type Failure struct {
	From  uint64    `json:"from"`
	To    uint64    `json:"to"`
	Error string    `json:"error"`
	Log   string    `json:"log"`
	Time  time.Time `json:"time"`
	// RolledBack are the containers whose requests' changes it undid.
	RolledBack []string `json:"rolled_back,omitempty"`
	// Kept are the containers whose changes it contained without a
	// request (an admin's hand edit, an import): they stay in the
	// registry, marked with the failure, and are not applied.
	Kept []string `json:"kept,omitempty"`
	// System says what became of the host's system when the failed
	// rebuild had switched it ("" when it had not).
	System string `json:"system,omitempty"`
}

// maxFailures bounds failures.json; a waiter older than that many failed
// rebuilds has long been answered.
const maxFailures = 100

// RebuildIntent is written before a rebuild starts and removed when its
// outcome is recorded. Found with the rebuild lock free, it means the
// rebuilding process died: the host's state is unknown.
type RebuildIntent struct {
	PID int `json:"pid"`
	// PGID is the process group of the rebuild command, recorded once it
	// started: the next rebuild kills what is left of it.
	PGID int `json:"pgid,omitempty"`
	// System is the store path of the host's system before the rebuild,
	// which a failed rebuild that switched it puts back.
	System string `json:"system,omitempty"`
	// Mark is the value of DEVHOST_REBUILD in the rebuild command's
	// environment, recorded before it starts (see rebuildMark).
	Mark  string    `json:"mark,omitempty"`
	Gen   uint64    `json:"gen"`
	Log   string    `json:"log"`
	Start time.Time `json:"start"`
}

// Intent is an operation on one container in progress, written (under the
// registry lock, while holding the container's op lock) before its first
// change. Found with the op lock free, its process died: recovery puts back
// what it recorded.
type Intent struct {
	Op   string `json:"op"` // "ensure" or "destroy"
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// New is true when the entry did not exist before: recovery deletes it.
	New bool `json:"new"`
	// PrevEntry is the registry file's content before the operation.
	PrevEntry *string `json:"prev_entry,omitempty"`
	// PrevProvision is the provision.nix in place before (nil: none).
	PrevProvision *string `json:"prev_provision,omitempty"`
	// PrevProfile is the profile symlink's target before ("" = none).
	PrevProfile string `json:"prev_profile"`
	// PrevBuild is the build record before (nil: none).
	PrevBuild *BuildRecord `json:"prev_build,omitempty"`
	Start     time.Time    `json:"start"`
}

// BuildRecord says what a container's current profile generation was built
// from, so an ensure with the same inputs skips the build.
type BuildRecord struct {
	Inputs    string    `json:"inputs"` // digest of channel, configuration and provision.nix
	StorePath string    `json:"store_path"`
	Profile   string    `json:"profile"` // the profile link target after installing it
	Time      time.Time `json:"time"`
}
