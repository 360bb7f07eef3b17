//go:build !devhosttest

package cli

// startTestProfile does nothing in a real build (see testprofile_on.go).
func startTestProfile(*IOStreams) (stop func()) { return func() {} }
