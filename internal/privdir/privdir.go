package privdir

import (
	"crypto/rand"
	"encoding/hex"
)

// Outcome says what [Ensure] did.
type Outcome int

const (
	// Existed means the directory existed with the right owner and access.
	Existed Outcome = iota
	// Created means the directory was created, private from the start.
	Created
	// Reset means the directory existed with the right owner but wider
	// access, which was reset to the private one.
	Reset
)

// String returns "existed", "created" or "reset".
func (o Outcome) String() string {
	switch o {
	case Created:
		return "created"
	case Reset:
		return "reset"
	}
	return "existed"
}

// randomName returns prefix followed by 32 random hex digits.
func randomName(prefix string) string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b[:])
}
