//go:build !linux

package generator

// exchange is not available: Write falls back to two renames.
func exchange(a, b string) error { return errNoExchange }

// syncFS is not available: writeTree fsyncs file by file.
func syncFS(string) error { return errNoSyncfs }
