package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

// maxBadLines bounds the malformed-line warnings printed per file.
const maxBadLines = 20

func runAnalyze(e *env, args []string) error {
	fs := newFlags(e, "analyze")
	asJSON := fs.Bool("json", false, "print one JSON object per finding instead of a table")
	cfgPath := fs.String("config", "", "analyzer configuration `file` (JSON; every field has a default)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("give one or more event files (JSON Lines events, stdouttrace span exports or the OpenTelemetry Collector's OTLP/JSON file output; - for stdin)")
	}
	cfg := anomaly.Config{}
	if *cfgPath != "" {
		f, err := os.Open(*cfgPath)
		if err != nil {
			return err
		}
		cfg, err = anomaly.LoadConfig(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *cfgPath, err)
		}
	}
	var events []telemetry.Event
	for _, name := range fs.Args() {
		if err := readEvents(e, name, &events); err != nil {
			return err
		}
	}
	findings := anomaly.Detect(events, cfg)
	if *asJSON {
		return anomaly.WriteJSON(e.stdout, findings)
	}
	return anomaly.WriteTable(e.stdout, findings)
}

// readEvents appends the events of one file (or stdin for "-"), warning on
// stderr about malformed lines, which are skipped.
func readEvents(e *env, name string, events *[]telemetry.Event) error {
	var r io.Reader = e.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	bad := 0
	err := telemetry.DecodeAny(context.Background(), r, func(ev telemetry.Event) error {
		*events = append(*events, ev)
		return nil
	}, func(le *telemetry.LineError) {
		bad++
		if bad <= maxBadLines {
			fmt.Fprintf(e.stderr, "keyward analyze: %s:%d: skipped: %v\n", name, le.Line, le.Err)
		}
	})
	if bad > maxBadLines {
		fmt.Fprintf(e.stderr, "keyward analyze: %s: %d malformed lines skipped in all\n", name, bad)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
