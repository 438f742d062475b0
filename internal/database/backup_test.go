package database

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

// A backup goes to the registry and comes back byte for byte; a team
// can neither read nor replace ops's backups.
func TestBackupRoundTrip(t *testing.T) {
	reg := registrytest.Start(t)
	ops := Registry{Host: reg.Addr, Username: "admin", Password: registrytest.AdminPassword, PlainHTTP: true}
	ctx := context.Background()
	if got, err := ops.Backups(ctx, "dev2", "quotes", ""); err != nil || len(got) != 0 {
		t.Fatalf("a database never backed up: %v %v", got, err)
	}
	dumpPath := filepath.Join(t.TempDir(), "dump")
	want := bytes.Repeat([]byte("PGDMP rows\n"), 1000)
	if err := os.WriteFile(dumpPath, want, 0o600); err != nil {
		t.Fatal(err)
	}
	dump, err := os.Open(dumpPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Close()
	taken := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	b, err := ops.PushBackup(ctx, "dev2", "quotes", "staging", "quotes", "15.18", dump, taken)
	if err != nil {
		t.Fatal(err)
	}
	if b.Tag != "staging-20261205T120000Z" || b.Size != int64(len(want)) || !strings.HasPrefix(b.Ref, reg.Addr+"/slipway/backups/dev2/quotes:") {
		t.Errorf("backup: %+v", b)
	}
	if _, err := ops.PushBackup(ctx, "dev2", "quotes", "prod", "quotes", "15.18", dump, taken.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	all, err := ops.Backups(ctx, "dev2", "quotes", "")
	if err != nil || len(all) != 2 || all[0].Env != "prod" || all[1].Tag != b.Tag {
		t.Fatalf("backups, newest first: %+v %v", all, err)
	}
	if staging, _ := ops.Backups(ctx, "dev2", "quotes", "staging"); len(staging) != 1 {
		t.Errorf("staging's backups: %+v", staging)
	}
	var got bytes.Buffer
	fetched, err := ops.FetchBackup(ctx, "dev2", "quotes", b.Tag, &got)
	if err != nil || !bytes.Equal(got.Bytes(), want) || fetched.Env != "staging" || !fetched.Taken.Equal(taken) {
		t.Fatalf("fetched %d bytes, %+v, %v", got.Len(), fetched, err)
	}

	dev2 := Registry{Host: reg.Addr, Username: "dev2", Password: registrytest.Dev2Password, PlainHTTP: true}
	if _, err := dev2.FetchBackup(ctx, "dev2", "quotes", b.Tag, &got); err == nil {
		t.Error("team dev2 read a backup from ops's repository")
	}
	if _, err := dev2.PushBackup(ctx, "dev2", "quotes", "staging", "quotes", "15.18", dump, taken.Add(time.Hour)); err == nil {
		t.Error("team dev2 pushed a backup into ops's repository")
	}
	if all, _ := ops.Backups(ctx, "dev2", "quotes", ""); len(all) != 2 {
		t.Errorf("after the team's attempts: %+v", all)
	}
}
