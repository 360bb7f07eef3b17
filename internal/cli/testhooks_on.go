//go:build devhosttest

package cli

// testHooks is true only in the binary the end-to-end tests build with
// `go build -tags devhosttest`: it honours DEVHOST_TEST_USER and
// DEVHOST_TEST_GROUP_FILE. Never ship it.
const testHooks = true
