package generator

import "errors"

// errNoExchange says the platform or file system cannot swap two
// directories atomically.
var errNoExchange = errors.New("atomic directory exchange not supported")

// errNoSyncfs says the platform cannot flush a whole file system at once.
var errNoSyncfs = errors.New("syncfs not supported")

// ErrNotASet is returned (wrapped) by Write when the directory to replace,
// or its <dir>.old, holds something other than a generated set.
var ErrNotASet = errors.New("not a generated set")
