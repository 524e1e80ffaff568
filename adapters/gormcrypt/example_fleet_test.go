package gormcrypt_test

import (
	"context"
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/rotation"
)

// A fleet's rotation: the models' columns are in the registry, so a tool
// with no Go model re-encrypts them as a job other processes could share,
// and the inventory shows that the old key protects nothing any more.
func ExampleRegistryTargets() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gormcrypt-fleet-example")
	defer os.RemoveAll(dir)
	db, kr, err := open(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kr.Close()
	if _, err := gormcrypt.Register(db, kr); err != nil {
		fmt.Println(err)
		return
	}
	// AutoMigrate records the encrypted columns in the column registry.
	if err := gormcrypt.AutoMigrate(db, &Customer{}); err != nil {
		fmt.Println(err)
		return
	}
	for i := range 4 {
		c := Customer{ID: uuid.New(), Name: fmt.Sprint(i), SSN: fmt.Sprintf("000-00-000%d", i), Email: fmt.Sprintf("c%d@example.com", i)}
		if err := db.Create(&c).Error; err != nil {
			fmt.Println(err)
			return
		}
	}
	old := kr.Primary()
	if _, err := kr.Rotate(ctx); err != nil {
		fmt.Println(err)
		return
	}

	targets, err := gormcrypt.RegistryTargets(ctx, db, kr)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, target := range targets {
		job, err := gormcrypt.NewJob(ctx, target)
		if err != nil {
			fmt.Println(err)
			return
		}
		st, err := rotation.ReencryptJob(ctx, kr, job)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %v: rewritten %d values\n", target.Table(), target.Columns(), st.Rewritten)
	}

	inv, err := gormcrypt.Inventory(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range inv {
		fmt.Printf("%s.%s: %d values, under the old key: %t\n", h.Table, h.Column, h.Values, h.KeyID == old)
	}
	inUse, err := gormcrypt.NewUsage(db).KeyInUse(ctx, kr.Name(), old)
	fmt.Println("old key in use:", inUse, err)
	// Output:
	// customers [email ssn]: rewritten 8 values
	// customers.email: 4 values, under the old key: false
	// customers.ssn: 4 values, under the old key: false
	// old key in use: false <nil>
}
