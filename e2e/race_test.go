//go:build race

package e2e

// raceEnabled builds the binary under test with -race when the tests run
// with it, so data races in the real process fail the run too.
const raceEnabled = true
