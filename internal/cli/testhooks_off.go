//go:build !devhosttest

package cli

// testHooks is false in every real build: the DEVHOST_TEST_* environment
// variables that let the end-to-end tests play several users are ignored.
const testHooks = false
