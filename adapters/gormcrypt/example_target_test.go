package gormcrypt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/rotation"
)

func ExampleNewTarget() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gormcrypt-target-example")
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
	if err := db.AutoMigrate(&Customer{}); err != nil {
		fmt.Println(err)
		return
	}
	for i := range 5 {
		c := Customer{ID: uuid.New(), Name: fmt.Sprint(i), SSN: fmt.Sprintf("000-00-000%d", i), Email: fmt.Sprintf("c%d@example.com", i)}
		if err := db.Create(&c).Error; err != nil {
			fmt.Println(err)
			return
		}
	}

	// Rotate, then bring the stored values over to the new key.
	if _, err := kr.Rotate(ctx); err != nil {
		fmt.Println(err)
		return
	}
	target, err := gormcrypt.NewTarget(db, &Customer{})
	if err != nil {
		fmt.Println(err)
		return
	}
	cp, _ := rotation.NewFileCheckpoint(filepath.Join(dir, "rotation.checkpoint"))
	st, err := rotation.Reencrypt(ctx, kr, target, rotation.WithCheckpoint(cp))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rewritten %d values, %d already current\n", st.Rewritten, st.Current)

	var c Customer
	if err := gormcrypt.Where(db, "Email", "c3@example.com").First(&c).Error; err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Name, c.SSN)
	// Output:
	// rewritten 10 values, 0 already current
	// 3 000-00-0003
}
