package anomaly

import "errors"

// ErrInvalidConfig reports a configuration that cannot be used: an unknown
// JSON field, a value of the wrong type, a negative threshold, an unknown
// time zone, malformed work hours.
var ErrInvalidConfig = errors.New("anomaly: invalid config")

// ErrInvalidOption reports an analyzer option that is nil or given twice.
var ErrInvalidOption = errors.New("anomaly: invalid option")
