package gitserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/internal/fsutil"
)

// The push journal closes the gap between git updating a ref and OnPush
// hearing of it. Before git-http-backend may touch a ref, the server
// writes (and syncs) what the repository's refs were; once every change
// was handed to OnPush the record goes. A crash in between leaves the
// record, and Replay tells the changes on the next start. The record sits
// under Root in a directory no repository name can reach (names start
// with a letter or digit).
const journalDir = ".pushes"

// pushRecord is one push in progress.
type pushRecord struct {
	ID     string            `json:"id"`
	Repo   string            `json:"repo"`
	Pusher string            `json:"pusher"`
	At     time.Time         `json:"at"`
	Before map[string]string `json:"before"`
}

var pushSeq atomic.Uint64

func (s *Server) journalPath(id string) string {
	return filepath.Join(s.Root, journalDir, id+".json")
}

// beginPush names the push (its name sorts in arrival order) and writes
// its record.
func (s *Server) beginPush(rec *pushRecord) error {
	rec.ID = fmt.Sprintf("%020d-%06d", rec.At.UnixNano(), pushSeq.Add(1)%1000000)
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.Root, journalDir), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.journalPath(rec.ID), data, 0o600)
}

// endPush tells OnPush what the push changed, then drops its record.
func (s *Server) endPush(rec *pushRecord) {
	if s.OnPush != nil {
		for i, ev := range diffRefs(rec.Repo, rec.Pusher, rec.Before, s.refs(rec.Repo), rec.At) {
			ev.ID = fmt.Sprintf("%s-%03d", rec.ID, i)
			s.OnPush(ev)
		}
	}
	_ = os.Remove(s.journalPath(rec.ID))
}

// Replay tells OnPush the changes of pushes a crash cut off before they
// were told (it may tell a change twice, with the same Event.ID, when the
// crash came after OnPush and before the record went). Call it once
// OnPush is set and before serving; it returns how many pushes it found.
func (s *Server) Replay() (int, error) {
	dir := filepath.Join(s.Root, journalDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		var rec pushRecord
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			err = json.Unmarshal(data, &rec)
		}
		if err == nil {
			err = ValidateName(rec.Repo)
		}
		if err != nil {
			// WriteFileAtomic never leaves half a record; this one was
			// not written by the server.
			return n, fmt.Errorf("push journal %s: %w (remove the file to go on)", filepath.Join(dir, name), err)
		}
		lock := s.repoLock(rec.Repo)
		lock.Lock()
		s.endPush(&rec)
		lock.Unlock()
		n++
	}
	return n, nil
}
