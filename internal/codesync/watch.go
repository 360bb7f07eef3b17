package codesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Batch is the changes one sync answers.
type Batch struct {
	// Paths changed (slash-separated, relative to the root), sorted; "."
	// when the kernel dropped events and everything must be compared.
	Paths []string
	// Initial is the first sync, before any change.
	Initial bool
}

// WatchOptions tune Watch.
type WatchOptions struct {
	// Quiet is how long no change must come before a sync starts
	// (default 200 ms): an editor's save or a `git checkout` is one sync.
	Quiet time.Duration
	// MaxDelay bounds the wait under a steady stream of changes (default
	// 2 s): a sync starts at the latest that long after the first change.
	MaxDelay time.Duration
	// Rules: changes to excluded paths start no sync, and excluded
	// directories are not watched.
	Rules *Rules
	// Ready, when set, is closed once every directory is watched, before
	// the initial sync.
	Ready chan<- struct{}
}

// Watch watches the directory root and everything below it, and calls
// sync: once at the start (Batch.Initial), then once per batch of changes,
// never twice at a time. Changes that come while sync runs make the next
// batch. New directories are watched as they appear (and what was written
// into them before the watch began is part of the batch); editors' atomic
// saves (write a temporary file, rename it over the old one) and
// delete-then-create are ordinary changes of the directory, which is what
// is watched. Watch returns nil when ctx ends, or the first error of sync
// or of the watch itself.
func Watch(ctx context.Context, root string, opts WatchOptions, sync func(context.Context, Batch) error) error {
	if opts.Quiet <= 0 {
		opts.Quiet = 200 * time.Millisecond
	}
	if opts.MaxDelay < opts.Quiet {
		opts.MaxDelay = max(2*time.Second, opts.Quiet)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", root, err)
	}
	defer func() { _ = w.Close() }()
	wt := &watchTree{w: w, root: root, rules: opts.Rules, pending: map[string]bool{}}
	if err := wt.add(root); err != nil {
		return err
	}
	clear(wt.pending) // what is there at the start is the initial sync's
	if opts.Ready != nil {
		close(opts.Ready)
	}

	done := make(chan error, 1)
	wait := func() error { return <-done }
	running := true
	go func() { done <- sync(ctx, Batch{Initial: true}) }()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // of the pending batch; zero: none
	arm := func() {
		if first.IsZero() {
			first = time.Now()
		}
		d := min(opts.Quiet, time.Until(first.Add(opts.MaxDelay)))
		timer.Reset(max(d, 0))
	}
	due := false // the timer fired while a sync ran
	start := func() {
		batch := Batch{Paths: make([]string, 0, len(wt.pending))}
		for p := range wt.pending {
			batch.Paths = append(batch.Paths, p)
		}
		sort.Strings(batch.Paths)
		clear(wt.pending)
		first, due, running = time.Time{}, false, true
		go func() { done <- sync(ctx, batch) }()
	}
	for {
		select {
		case <-ctx.Done():
			if running {
				_ = wait() // the sync ends with ctx; its error no longer matters
			}
			return nil
		case err := <-done:
			running = false
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if due {
				start()
			}
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			changed, err := wt.event(ev)
			if err != nil {
				if running {
					_ = wait() // the sync ends with ctx; its error no longer matters
				}
				return err
			}
			if changed {
				arm()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("watch %s: %w", root, err)
			}
			// Events were lost: let rsync compare everything.
			wt.pending["."] = true
			arm()
		case <-timer.C:
			if len(wt.pending) == 0 {
				continue
			}
			if running {
				due = true
				continue
			}
			start()
		}
	}
}

// watchTree keeps the watches of a directory tree and the pending changes.
type watchTree struct {
	w       *fsnotify.Watcher
	root    string
	rules   *Rules
	pending map[string]bool
}

func (t *watchTree) rel(p string) (string, bool) {
	r, err := filepath.Rel(t.root, p)
	if err != nil || r == ".." || filepath.IsAbs(r) || (len(r) > 2 && r[:3] == ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// add watches dir and every directory below it that the rules keep, and
// records every path found below it as changed: files written into a new
// directory before its watch began raised no event.
func (t *watchTree) add(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != t.root && errors.Is(err, fs.ErrNotExist) {
				return nil // gone again before it was watched
			}
			return fmt.Errorf("watch %s: %w", p, err)
		}
		rel, _ := t.rel(p)
		if p != t.root {
			if t.rules.Excluded(rel, d.IsDir()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			t.pending[rel] = true
		}
		if !d.IsDir() {
			return nil
		}
		if err := t.w.Add(p); err != nil {
			if p != t.root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return fmt.Errorf("watch %s: %w (raise fs.inotify.max_user_watches, or exclude large directories)", p, err)
		}
		return nil
	})
}

// event records ev and reports whether it is a change worth a sync.
func (t *watchTree) event(ev fsnotify.Event) (bool, error) {
	rel, ok := t.rel(ev.Name)
	if !ok || rel == "." {
		return false, nil
	}
	fi, err := os.Lstat(ev.Name)
	exists := err == nil
	if exists {
		if t.rules.Excluded(rel, fi.IsDir()) {
			return false, nil
		}
	} else if t.rules.Excluded(rel, false) && t.rules.Excluded(rel, true) {
		// Gone: excluded whether it was a file or a directory.
		return false, nil
	}
	t.pending[rel] = true
	if exists && fi.IsDir() && ev.Has(fsnotify.Create) {
		// A new directory (or one renamed into the tree): watch it and
		// everything in it.
		if err := t.add(ev.Name); err != nil {
			return true, err
		}
	}
	return true, nil
}
