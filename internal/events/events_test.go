package events

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogKeepsOrderFiltersAndStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timeline.jsonl")
	l := Open(path, 4<<10)
	ch, stop := l.Subscribe()
	defer stop()
	start := time.Now().UTC()
	for i := range 100 {
		team := []string{"dev1", "dev2", ""}[i%3]
		if err := l.Append(Event{Source: SourceFlux, Team: team, Severity: "info", Message: fmt.Sprintf("event %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if e := <-ch; e.Message != "event 0" || e.Time.Before(start) {
		t.Errorf("the first event heard: %+v", e)
	}
	// Bounded: the file moved aside at most once per 4 KiB, and only two are kept.
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 4<<10 {
			t.Fatalf("%s: %v, %d bytes", p, err, fi.Size())
		}
	}
	all, err := l.Read(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || len(all) == 100 || all[len(all)-1].Message != "event 99" {
		t.Fatalf("read %d events, last %+v: want the newest kept, the oldest dropped", len(all), all[len(all)-1])
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.Before(all[i-1].Time) {
			t.Fatalf("out of order at %d", i)
		}
	}
	dev1, err := l.Read(Filter{Teams: []string{"dev1"}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(dev1) != 3 || dev1[2].Message != "event 99" {
		t.Fatalf("dev1's newest 3: %+v", dev1)
	}
	for _, e := range dev1 {
		if e.Team != "dev1" {
			t.Errorf("dev1 reads %+v", e)
		}
	}
}

func TestLogSkipsALineACrashCutOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timeline.jsonl")
	l := Open(path, 0)
	if err := l.Append(Event{Source: SourceGit, Severity: "info", Message: "whole"}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-11-27T10:00:00Z","source":"git","mess`)
	f.Close()
	got, err := l.Read(Filter{})
	if err != nil || len(got) != 1 || got[0].Message != "whole" {
		t.Fatalf("got %+v, %v", got, err)
	}
	// The next event starts on a line of its own after the cut one.
	if err := l.Append(Event{Source: SourceGit, Severity: "info", Message: strings.Repeat("x", MaxMessage+10)}); err != nil {
		t.Fatal(err)
	}
	got, _ = l.Read(Filter{})
	if len(got) != 2 || got[0].Message != "whole" || len(got[1].Message) != MaxMessage+len("…") {
		t.Fatalf("after a cut line: %+v", got)
	}
}
