package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	s := Open(path)
	if err := s.Set("dev1", "pw1", false, []string{"dev1/"}); err != nil {
		t.Fatal(err)
	}
	u, err := s.Authenticate("dev1", "pw1")
	if err != nil {
		t.Fatal(err)
	}
	if !u.CanPush("dev1/app") || u.CanPush("dev10/app") || u.CanPush("dev2/app") {
		t.Fatalf("prefix rules wrong for %+v", u)
	}
	if _, err := s.Authenticate("dev1", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Authenticate("nobody", "pw1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "pw1") || !strings.Contains(string(data), "$2a$") {
		t.Fatalf("password not stored as a bcrypt hash:\n%s", data)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode %v", st.Mode().Perm())
	}

	// Another process (a second Store) changes the password; the first
	// store, and its cache of verified passwords, follow.
	time.Sleep(10 * time.Millisecond)
	if err := Open(path).Set("dev1", "pw2", false, []string{"dev1/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("dev1", "pw1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password still accepted after a change: %v", err)
	}
	if _, err := s.Authenticate("dev1", "pw2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("dev1", "", true, nil); err != nil {
		t.Fatal("an existing user keeps its password when none is given:", err)
	}
	if u, err := s.Authenticate("dev1", "pw2"); err != nil || !u.Admin {
		t.Fatalf("after set: %+v %v", u, err)
	}
	if err := s.Set("dev9", "", false, nil); err == nil {
		t.Fatal("a new user without a password was accepted")
	}
	if err := s.Delete("dev1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("dev1", "pw2"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal("deleted user still authenticates")
	}
}

func TestValidation(t *testing.T) {
	for _, n := range []string{"", "Dev1", "dev 1", "-dev", strings.Repeat("a", 64)} {
		if ValidateName(n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	for _, p := range []string{"dev1", "/dev1/", ""} {
		if ValidatePrefix(p) == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}
