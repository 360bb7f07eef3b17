//go:build !unix

package cli

import "os"

// terminalWidth is unknown here (0).
func terminalWidth(*os.File) int { return 0 }
