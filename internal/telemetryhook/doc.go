// Package telemetryhook carries what package telemetry shares with
// keyward's own recording code (internal/instrument) and not with users: the
// state of an Instrumentation that its exported methods do not show.
//
// It imports nothing of keyward's, so that telemetry can import it while
// internal/instrument imports telemetry. Package telemetry sets [StateOf]
// once, when it is initialized; nothing else writes it.
package telemetryhook
