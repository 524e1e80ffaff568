package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestPseudonymizer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	p, err := NewPseudonymizer(key)
	if err != nil {
		t.Fatal(err)
	}
	key[0] = 8 // the pseudonymizer keeps its own copy
	q, _ := NewPseudonymizer(bytes.Repeat([]byte{7}, 32))
	other, _ := NewPseudonymizer(bytes.Repeat([]byte{9}, 32))

	u := p.UserID("u1042")
	if ok, _ := regexp.MatchString(`^ps:[0-9a-f]{32}$`, u); !ok {
		t.Errorf("UserID = %q, want ps: and 32 hex digits", u)
	}
	if q.UserID("u1042") != u {
		t.Error("same key, same ID, different pseudonyms")
	}
	if other.UserID("u1042") == u {
		t.Error("different keys gave the same pseudonym")
	}
	if p.DataID("u1042") == u {
		t.Error("user and data pseudonyms of the same string are equal")
	}
	if p.UserID("u1043") == u {
		t.Error("different IDs gave the same pseudonym")
	}
	long := strings.Repeat("x", 500)
	if p.DataID(long) == p.DataID(long[:499]) || len(p.DataID(long)) != 35 {
		t.Error("long IDs are not pseudonymized properly")
	}
	if p.UserID("") != "" {
		t.Error("empty ID did not stay empty")
	}
	var nilP *Pseudonymizer
	if nilP.UserID("a") != "a" || nilP.DataID("b") != "b" || nilP.Event(exampleEvent) != exampleEvent {
		t.Error("nil pseudonymizer changed IDs")
	}
	e := p.Event(exampleEvent)
	if e.UserID != p.UserID(exampleEvent.UserID) || e.DataID != p.DataID(exampleEvent.DataID) || e.Role != exampleEvent.Role {
		t.Errorf("Event = %+v", e)
	}
}

func TestPseudonymizerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewPseudonymizer(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewPseudonymizer(%d bytes) = %v, want ErrKeySize", n, err)
		}
	}
}

func TestPseudonymizerRedacts(t *testing.T) {
	p, _ := NewPseudonymizer(bytes.Repeat([]byte{0xAB}, 32))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, p)
		if strings.Contains(strings.ToLower(out), "abab") || strings.Contains(out, "\xab") || strings.Contains(out, "171") {
			t.Errorf("Sprintf(%s) = %q shows the key", verb, out)
		}
	}
}

func TestPseudonymizerConcurrent(t *testing.T) {
	p, _ := NewPseudonymizer(make([]byte, 32))
	want := p.UserID("u")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if got := p.UserID("u"); got != want {
					t.Errorf("UserID = %s, want %s", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
