//go:build !unix

package anomaly

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
