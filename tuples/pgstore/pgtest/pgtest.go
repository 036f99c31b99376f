// Package pgtest gives tests a fresh PostgreSQL database on the server named by
// RELATA_TEST_POSTGRES. Without the variable, tests skip with one line saying how to
// run them; under CI=true they fail instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the server the PostgreSQL tests use.
const EnvVar = "RELATA_TEST_POSTGRES"

// skipMessage is the one line a skipped test prints.
const skipMessage = "PostgreSQL tests skipped: set " + EnvVar + "=postgres://… (eval \"$(scripts/postgres-dev.sh start)\" starts a private server and prints it)"

// URL returns the server URL from RELATA_TEST_POSTGRES, skipping the test when it is
// unset (failing it under CI=true).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(EnvVar + " is unset under CI=true: " + skipMessage)
		}
		t.Skip(skipMessage)
	}
	return u
}

// NewDatabase creates an empty database on the test server and returns its URL; the
// database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvVar, err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "relata_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvVar, err)
	}
	u.Path = "/" + name
	return u.String()
}
