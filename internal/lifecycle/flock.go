package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// fileLock is an exclusive flock on a file that is never deleted (deleting
// a lock file lets two processes lock two different inodes). The kernel
// releases it when the process dies, however it dies: a lock that can be
// taken means its previous holder is gone.
type fileLock struct {
	f *os.File
}

func openLockFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), privateDirPerm); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// tryLock takes the lock if it is free; ok is false when another process
// holds it.
func tryLock(path string) (l *fileLock, ok bool, err error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return &fileLock{f: f}, true, nil
}

// lock waits for the lock until ctx ends. flock(2) cannot be interrupted
// portably, so it polls with a non-blocking flock, backing off up to 50 ms:
// cheap, and a waiter notices a released lock quickly.
func lock(ctx context.Context, path string) (*fileLock, error) {
	return lockUnless(ctx, path, nil)
}

// lockUnless waits for the lock as lock does, but between two attempts
// asks done whether it still needs it: when done says no, it returns a nil
// lock and no error. done may be nil (always needed).
func lockUnless(ctx context.Context, path string, done func() (bool, error)) (*fileLock, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if done != nil {
			if ok, err := done(); err != nil || ok {
				_ = f.Close()
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// unlock releases the lock (closing the file releases the flock).
func (l *fileLock) unlock() {
	if l != nil && l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}
