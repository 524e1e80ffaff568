package hook

import (
	"time"

	"go.opentelemetry.io/otel/metric"
)

// TelemetryState is the part of a telemetry.Instrumentation that
// internal/instrument reads.
type TelemetryState struct {
	// MeterProvider is the meter provider in effect.
	MeterProvider metric.MeterProvider
	// Version is the instrumentation version of every keyward scope.
	Version string
	// HasSinks reports whether events handed to Record or Emit go to any
	// sink at the time of the call (sinks may follow telemetry.Default).
	HasSinks func() bool
}

// TelemetryStateOf returns the TelemetryState of a
// *telemetry.Instrumentation. Package telemetry sets it.
var TelemetryStateOf func(in any) TelemetryState

// Clock is the time source of a keyring's cache. The keyring reads the time
// only on slow paths; cache expiry runs on timers, so the hot path reads an
// atomic flag instead of the clock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless the
	// returned stop function is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// KeyringWithClock returns a keyring.Option (as any) that replaces the
// system clock, for tests of the cache's time behaviour; it fails New for a
// nil clock. Package keyring sets it.
var KeyringWithClock func(c Clock) any
