//go:build devhosttest

package cli

// testHooks is true only in the binary the end-to-end tests build with
// `go build -tags devhosttest`: it honours DEVHOST_TEST_USER,
// DEVHOST_TEST_GROUP_FILE and DEVHOST_TEST_CONTAINERS_DIR. Never ship it.
const testHooks = true
