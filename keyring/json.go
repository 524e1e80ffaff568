package keyring

import (
	"bytes"
	"encoding/json"
)

func marshalJSON(v any) ([]byte, error) { return json.Marshal(v) }

// unmarshalJSON decodes strictly: unknown fields are errors, so a typo in a
// hand-edited store is found rather than ignored.
func unmarshalJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
