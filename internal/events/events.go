// Package events is the line's timeline: what happened to whom and when,
// as the platform heard it — pushes to the git server, pipeline runs that
// ended, and every event Flux's notification-controller sends about the
// fleet and the tenants' releases and sources.
//
// The timeline is one append-only file of JSON lines under the state
// directory, bounded: past MaxBytes it moves to a single ".1" file and a
// new one starts, so at most twice MaxBytes is kept. A line cut off by a
// crash is skipped when read.
package events

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Sources of events.
const (
	SourceGit      = "git"
	SourcePipeline = "pipeline"
	SourceFlux     = "flux"
	SourceRegistry = "registry"
	SourceAlert    = "alert"
)

// Event is one line of the timeline.
type Event struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	// Team is the team the event concerns; "" for the platform's own
	// (the fleet's Kustomizations).
	Team      string `json:"team,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Kind and Name say what the event is about: a HelmRelease, a
	// Repository, a Pipeline.
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
	// Severity is "info", "warning" or "error".
	Severity string `json:"severity"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message"`
	// Revision is the commit, chart version or run the event is about.
	Revision string `json:"revision,omitempty"`
	// By is who acted, where known (the pusher).
	By string `json:"by,omitempty"`
}

// MaxMessage bounds an event's message; longer ones are cut.
const MaxMessage = 4 << 10

// DefaultMaxBytes is the size past which the log moves to its ".1" file.
const DefaultMaxBytes = 8 << 20

// Log is the timeline's file. It is safe for concurrent use.
type Log struct {
	path     string
	maxBytes int64

	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Open returns the log at path (made on the first Append).
func Open(path string, maxBytes int64) *Log {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Log{path: path, maxBytes: maxBytes, subs: map[chan Event]struct{}{}}
}

// Append writes one event, with its time set to now when unset.
func (l *Log) Append(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if len(e.Message) > MaxMessage {
		e.Message = e.Message[:MaxMessage] + "…"
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if fi, err := os.Stat(l.path); err == nil && fi.Size()+int64(len(line)) > l.maxBytes {
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("moving the full timeline aside: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// A line a crash cut off gets its end, so that this one stays whole.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	// One write of a whole line: O_APPEND keeps lines whole between
	// writers, and a crash can only cut the last one.
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	for ch := range l.subs {
		select {
		case ch <- e:
		default: // a slow listener misses events rather than stalls the line
		}
	}
	return err
}

// Subscribe returns a channel of the events appended from now on, and the
// function that ends the subscription.
func (l *Log) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}

// Filter selects events.
type Filter struct {
	// Teams, when not nil, keeps only events about these teams ("" is
	// the platform's own).
	Teams []string
	Since time.Time
	// Source, when set, keeps only events from it.
	Source string
	// Limit keeps the newest Limit events (0: all).
	Limit int
}

func (f Filter) keeps(e Event) bool {
	if f.Teams != nil && !slices.Contains(f.Teams, e.Team) {
		return false
	}
	if f.Source != "" && e.Source != f.Source {
		return false
	}
	return f.Since.IsZero() || !e.Time.Before(f.Since)
}

// Read returns the kept events the filter selects, oldest first.
func (l *Log) Read(f Filter) ([]Event, error) {
	var out []Event
	for _, p := range []string{l.path + ".1", l.path} {
		file, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r := bufio.NewReader(file)
		for {
			line, err := r.ReadBytes('\n')
			var e Event
			// A line without its newline is one a crash cut off.
			if len(line) > 0 && line[len(line)-1] == '\n' && json.Unmarshal(line, &e) == nil && f.keeps(e) {
				out = append(out, e)
				if f.Limit > 0 && len(out) > 2*f.Limit {
					out = slices.Delete(out, 0, len(out)-f.Limit)
				}
			}
			if err != nil {
				file.Close()
				if err != io.EOF {
					return nil, err
				}
				break
			}
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}
