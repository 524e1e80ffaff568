package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-aws", "127.0.0.1:0", "-gcp", "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if sc.Text() == "serving until interrupted" {
			break
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"arn:aws:kms:", awsAlias, gcpRing + "/cryptoKeys/" + gcpKey} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	for _, bad := range [][]string{{"-aws", "0.0.0.0:4599"}, {"-gcp", "example.com:1"}} {
		if err := run(context.Background(), bad, io.Discard); err == nil {
			t.Errorf("run %q succeeded", bad)
		}
	}
}
