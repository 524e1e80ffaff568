package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keyward/keyward/access"
)

// The scripted incident: a clerk account (mallory) pages through every
// record's e-mail address, a bulk read, and then tries to reveal one SSN
// after another, a burst of denials. It runs through the application's
// own code paths, as mallory: every decryption and refusal is real,
// audited and seen by the live analyzer.
const (
	incidentUser     = "mallory"
	incidentPage     = 25 // records per simulated request
	incidentReveals  = 12 // denied reveals (the analyzer's default burst is 10)
	incidentMinReads = 100
)

type incidentResult struct {
	User     string `json:"user"`
	Requests int    `json:"requests"`
	Read     int    `json:"read"`
	Denied   int    `json:"denied"`
	Findings int    `json:"findings"`
}

// replayIncident replays the scripted incident (POST /api/monitoring/replay).
func (a *app) replayIncident(_ http.ResponseWriter, r *http.Request) (any, error) {
	if err := a.guard.Authorize(r.Context(), access.ActionManage, a.keyringResource()); err != nil {
		return nil, err
	}
	u, ok := a.user(incidentUser)
	if !ok {
		return nil, badRequest("the incident needs the scripted user " + incidentUser)
	}
	// The incident's requests are mallory's, not the admin's: a context of
	// their own, with the admin's request only as the reason they run.
	ctx := access.WithPrincipal(context.WithoutCancel(r.Context()), u.principal())
	res := incidentResult{User: u.ID}
	var ids []Record
	for offset := 0; ; offset += incidentPage {
		var page []Record
		err := a.simulate(ctx, "GET /api/records", func(ctx context.Context) error {
			return a.db.WithContext(ctx).Select("id", "name", "email").Order("created_at, id").
				Limit(incidentPage).Offset(offset).Find(&page).Error
		})
		if err != nil {
			return nil, err
		}
		res.Requests++
		res.Read += len(page)
		ids = append(ids, page...)
		if len(page) < incidentPage {
			break
		}
	}
	if res.Read < incidentMinReads {
		return nil, badRequest("the incident needs at least 100 records (start with -seed 120)")
	}
	for _, rec := range ids[:min(incidentReveals, len(ids))] {
		var got Record
		err := a.simulate(ctx, "POST /api/records/{id}/reveal", func(ctx context.Context) error {
			return a.db.WithContext(ctx).Select("id", "ssn", "notes").Where("id = ?", rec.ID).Take(&got).Error
		})
		res.Requests++
		switch {
		case errors.Is(err, access.ErrAccessDenied):
			res.Denied++
		case err != nil:
			return nil, err
		default:
			return nil, errors.New("webapp: the scripted clerk was allowed to reveal an SSN: the policy grants more than the incident expects")
		}
	}
	// The processor holds span events briefly to see them in time order;
	// the replay is over, so it observes them now.
	if err := a.analyzer.ForceFlush(ctx); err != nil {
		return nil, err
	}
	res.Findings = len(a.monitor.snapshot(time.Now()).Marks)
	return res, nil
}

// simulate runs f as one request of the scripted user, in a server span of
// its own, as the HTTP handler would.
func (a *app) simulate(ctx context.Context, route string, f func(context.Context) error) error {
	ctx, span := a.startSpan(ctx, route)
	defer span.End()
	return f(ctx)
}
