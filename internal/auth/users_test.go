package auth

import (
	"errors"
	"fmt"
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

// Two stores on one file (two processes: `slipway user set` beside a
// running server) setting users at the same time lose none of them.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	a, b := Open(path), Open(path)
	done := make(chan error, 2)
	for i, s := range []*Store{a, b} {
		go func() {
			for j := range 8 {
				if err := s.Set(fmt.Sprintf("u%d-%d", i, j), "pw", false, nil); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	users, err := Open(path).List()
	if err != nil || len(users) != 16 {
		t.Fatalf("%d users after 16 sets (%v)", len(users), err)
	}
}

// A name with no user costs the same bcrypt work as a wrong password, so
// timing does not tell which names exist.
func TestUnknownUserTakesAsLongAsAWrongPassword(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), "users.yaml"))
	if err := s.Set("dev1", "pw1", false, nil); err != nil {
		t.Fatal(err)
	}
	absentUserHash() // made once, not timed
	took := func(name string) time.Duration {
		start := time.Now()
		for range 3 {
			s.Authenticate(name, "wrong")
		}
		return time.Since(start)
	}
	known, unknown := took("dev1"), took("nobody")
	// bcrypt at the default cost takes tens of milliseconds; a map miss
	// takes microseconds. A factor of 5 leaves room for a noisy machine.
	if unknown*5 < known {
		t.Fatalf("an unknown user took %s, a wrong password %s: the difference tells names apart", unknown, known)
	}
}

// Failed logins from one address are throttled (without running bcrypt),
// per user name there first; other addresses and names are not.
func TestFailedLoginsAreThrottled(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), "users.yaml"))
	if err := s.Set("dev1", "pw1", false, nil); err != nil {
		t.Fatal(err)
	}
	for range failuresPerUser {
		if _, err := s.AuthenticateFrom("10.244.0.9:5555", "dev1", "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("a failed login: %v", err)
		}
	}
	if _, err := s.AuthenticateFrom("10.244.0.9:6666", "dev1", "pw1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("the right password after %d failures from the same address: %v, want throttled", failuresPerUser, err)
	}
	if _, err := s.AuthenticateFrom("10.244.0.7:5555", "dev1", "pw1"); err != nil {
		t.Fatalf("the same user from another address: %v", err)
	}
	if _, err := s.AuthenticateFrom("10.244.0.9:5555", "ops", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("another name from the throttled address: %v", err)
	}
	// Many names from one address: throttled in all past the address
	// limit (the failures counted directly: 200 bcrypt runs take long).
	for range failuresPerAddress {
		s.throttle.failed("10.244.0.8")
	}
	if _, err := s.AuthenticateFrom("10.244.0.8:1", "dev1", "pw1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after %d failures of many names: %v", failuresPerAddress, err)
	}
}
