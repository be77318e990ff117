package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/gobff/bff/session"
)

// keygen prints a fresh master key for the keys list: 32 bytes from
// crypto/rand in standard base64.
func (c *cli) keygen(args []string) error {
	fs := c.flags("keygen")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key := make([]byte, session.KeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+).
	_, err := fmt.Fprintln(c.stdout, base64.StdEncoding.EncodeToString(key))
	return err
}
