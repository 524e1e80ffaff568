#!/usr/bin/env bash
# Regenerates the Go code of keyservice.proto into OUT (default: this
# directory) with pinned tools: protoc from Debian's protobuf-compiler
# package and protoc-gen-go / protoc-gen-go-grpc at the versions below,
# installed with `go install` into a temporary GOBIN.
#
#   bash adapters/keyservice/internal/keyservicepb/generate.sh [OUT]
#
# .ci/run calls it with a temporary OUT and fails when the result differs
# from the checked-in files.
set -euo pipefail
cd "$(dirname "$0")"

PROTOC_VERSION=3.21.12
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

out="${1:-.}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if ! protoc --version 2>/dev/null | grep -qx "libprotoc ${PROTOC_VERSION}"; then
	echo "generate.sh: protoc ${PROTOC_VERSION} is needed (Debian: apt-get install protobuf-compiler); found: $(protoc --version 2>&1 || true)" >&2
	exit 1
fi

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"

PATH="$bin:$PATH" protoc -I . \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	keyservice.proto
