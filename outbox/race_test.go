//go:build race

package outbox_test

// raceEnabled tells whether the test binary was built with -race.
const raceEnabled = true
