package kmstest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFaults(t *testing.T) {
	var tab Faults[string]
	_, ok := tab.Take("Decrypt")
	assert.False(t, ok, "Take with no faults")

	tab.Inject("Decrypt", 2, "twice")
	tab.Inject("", 0, "once, any operation")
	f, ok := tab.Take("Encrypt")
	assert.True(t, ok, "Take(Encrypt) with a fault for every operation")
	assert.Equal(t, "once, any operation", f, "Take(Encrypt)")
	for i := range 2 {
		f, ok = tab.Take("Decrypt")
		assert.True(t, ok, "Take(Decrypt) %d", i)
		assert.Equal(t, "twice", f, "Take(Decrypt) %d", i)
	}
	_, ok = tab.Take("Decrypt")
	assert.False(t, ok, "Take(Decrypt) after its faults were used up")
	assert.Equal(t, int64(4), tab.Calls("Decrypt"), "Calls(Decrypt): 4 takes, faults included")
	assert.Equal(t, int64(1), tab.Calls("Encrypt"), "Calls(Encrypt)")

	tab.Inject("", Forever, "forever")
	for range 5 {
		_, ok = tab.Take("Decrypt")
		assert.True(t, ok, "Take with a Forever fault")
	}
	tab.Clear()
	_, ok = tab.Take("Decrypt")
	assert.False(t, ok, "Take after Clear")
}

func TestHold(t *testing.T) {
	assert.True(t, Hold(nil, nil, nil), "Hold without started or block")

	started, block, done := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	close(block)
	assert.True(t, Hold(started, block, done), "Hold with a closed block")
	assert.Len(t, started, 1, "Hold signalled started")

	close(done)
	assert.False(t, Hold(nil, make(chan struct{}), done), "Hold ended by done")
}

func TestHangBy(t *testing.T) {
	var tab Faults[[2]any]
	cleared := 0
	hang := HangBy(func(started chan<- struct{}, block <-chan struct{}) {
		tab.Inject("", Forever, [2]any{started, block})
	}, func() { cleared++; tab.Clear() })
	started, release := hang()
	f, ok := tab.Take("Decrypt")
	assert.True(t, ok, "Take while hanging")
	done := make(chan bool)
	go func() { done <- Hold(f[0].(chan<- struct{}), f[1].(<-chan struct{}), nil) }()
	<-started
	release()
	release()
	assert.True(t, <-done, "a held call goes on after release")
	assert.Equal(t, 1, cleared, "clear calls after two releases")
	_, ok = tab.Take("Decrypt")
	assert.False(t, ok, "Take after release")
}
