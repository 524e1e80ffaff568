package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/access"
)

// seedUser is the user the demo data is created as (a clerk: it may
// encrypt).
const seedUser = "seed"

var (
	firstNames = []string{"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Niklaus", "Margaret", "Dennis"}
	lastNames  = []string{"Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Wirth", "Hamilton", "Ritchie"}
	notes      = []string{"", "allergic to penicillin", "follow-up in six weeks", "asthma, uses an inhaler", "hypertension, on medication", "no known conditions"}
)

// seed creates n fictional records when the table is empty, so that the
// list, the rotation and the incident replay have data. SSNs are in the
// 9xx range, which is never issued; addresses are at example.org.
func (a *app) seed(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	var count int64
	if err := a.db.WithContext(ctx).Model(&Record{}).Count(&count).Error; err != nil || count > 0 {
		return err
	}
	recs := make([]Record, n)
	start := time.Now().Add(-time.Duration(n) * time.Minute)
	for i := range recs {
		first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames)+i)%len(lastNames)]
		recs[i] = Record{
			ID:        uuid.New(),
			Name:      fmt.Sprintf("%s %s", first, last),
			SSN:       fmt.Sprintf("9%02d-%02d-%04d", i%100, 10+i%90, 1000+i),
			Email:     fmt.Sprintf("%s.%s%d@example.org", strings.ToLower(first), strings.ToLower(last), i),
			Notes:     notes[i%len(notes)],
			CreatedBy: seedUser,
			CreatedAt: start.Add(time.Duration(i) * time.Minute),
		}
	}
	ctx = access.WithPrincipal(ctx, access.Principal{UserID: seedUser, Roles: []string{"clerk"}})
	return a.db.WithContext(ctx).CreateInBatches(recs, 50).Error
}
