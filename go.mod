module github.com/keyward/keyward

go 1.26

require (
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
