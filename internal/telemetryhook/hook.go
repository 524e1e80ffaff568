package telemetryhook

import "go.opentelemetry.io/otel/metric"

// State is the part of a telemetry.Instrumentation that internal/instrument
// reads.
type State struct {
	// MeterProvider is the meter provider in effect.
	MeterProvider metric.MeterProvider
	// HasSinks reports whether events handed to Record or Emit go to any
	// sink at the time of the call (sinks may follow telemetry.Default).
	HasSinks func() bool
}

// StateOf returns the State of a *telemetry.Instrumentation. Package
// telemetry sets it during its initialization, before any caller can hold
// an Instrumentation.
var StateOf func(in any) State
