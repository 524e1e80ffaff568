// Package keyservicepb is the generated Go code of the key service protocol
// (keyservice.proto, package keyward.v1): the messages and the gRPC client
// and server of keyward.v1.KeyService. It is internal: applications use the
// keyservice package, which speaks this protocol for them. generate.sh
// regenerates it with pinned tools; CI fails when it is not current.
package keyservicepb
