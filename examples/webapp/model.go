package main

import (
	"time"

	"github.com/google/uuid"
)

// Record is one person's record. SSN, Email and Notes are encrypted by
// gormcrypt before they reach the database; Email is also searchable by
// equality through its blind index EmailIdx. Name, CreatedBy and CreatedAt
// are stored as they are.
type Record struct {
	ID        uuid.UUID `gorm:"type:varchar(36);primaryKey"` // client-assigned: values are bound to the row
	Name      string    `gorm:"size:100"`
	SSN       string    `gorm:"serializer:keyward"`
	Email     string    `gorm:"serializer:keyward" keyward:"blind:EmailIdx;normalize:lower,trim"`
	EmailIdx  []byte    `gorm:"index"`
	Notes     string    `gorm:"serializer:keyward"`
	CreatedBy string    `gorm:"size:64"`
	CreatedAt time.Time `gorm:"index"`
}

// table is Record's table, and the table part of its field resources
// ("field:records.ssn").
const table = "records"

// encryptedColumns are Record's encrypted columns, in display order.
var encryptedColumns = []string{"ssn", "email", "notes"}

// User is a demo user: sign-in picks one, and its roles decide the rest.
type User struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	Description string   `json:"description"`
	// Scripted users act in the incident replay and cannot sign in.
	Scripted bool `json:"scripted,omitempty"`
}

// demoUsers are the users of the demo: one per role, and the scripted
// account of the incident replay.
var demoUsers = []User{
	{ID: "alice", Name: "Alice", Roles: []string{"clerk"}, Description: "front desk: creates records, sees and searches e-mail addresses"},
	{ID: "bob", Name: "Dr. Bob", Roles: []string{"doctor"}, Description: "doctor: also reveals SSN and notes"},
	{ID: "carol", Name: "Carol", Roles: []string{"admin"}, Description: "administrator: keys, audit, monitoring; no record data"},
	{ID: "mallory", Name: "Mallory", Roles: []string{"clerk"}, Description: "a clerk account the incident replay misuses", Scripted: true},
}
