// Package readme holds the test that keeps the repository's README true:
// it runs the set-up commands and the command-line walk-through the README
// shows, and checks its install lines against the module. It has no
// non-test code.
package readme
