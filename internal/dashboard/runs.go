package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/ci/runner"
)

// runOf reads the run a request names and checks the viewer may see it:
// a team's runs are the runs of its repositories; ops's own (ops/…) and
// any other are for admins. Another team's run is refused exactly as one
// that does not exist is not: the viewer learns it is not theirs, not
// what it holds.
func (s *Server) runOf(r *http.Request, v *viewer) (*runner.Run, int, error) {
	if s.Runs == nil {
		return nil, http.StatusNotFound, errors.New("this platform keeps no pipeline runs")
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		return nil, http.StatusNotFound, fmt.Errorf("no run %q", r.PathValue("id"))
	}
	run, err := s.Runs.Get(id)
	if err != nil {
		return nil, http.StatusNotFound, fmt.Errorf("no run %d", id)
	}
	team, _, _ := strings.Cut(run.Repository(), "/")
	if v.Teams != nil && !slices.Contains(v.Teams, team) {
		return nil, http.StatusForbidden, fmt.Errorf("run %d is not %s's: user %s sees only its own team's runs", id, v.Team, v.User.Name)
	}
	return run, http.StatusOK, nil
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	run, status, err := s.runOf(r, v)
	if err != nil {
		refusePage(w, v, status, "No such run", err)
		return
	}
	render(w, "run.html", map[string]any{"Viewer": v, "Run": run, "Title": fmt.Sprintf("Run %d", run.ID), "Page": "run",
		"CanRerun": s.Rerun != nil && run.Reason != "Manual" && run.Commit != ""})
}

func (s *Server) runJSON(w http.ResponseWriter, r *http.Request, v *viewer) {
	run, status, err := s.runOf(r, v)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// sameOrigin refuses a state-changing request a page of another site
// could have made: the dashboard's own script sends the header, and a
// browser sends no custom header across origins without a CORS
// preflight, which the dashboard never grants.
func sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-Slipway-Dashboard") != "1" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "this action is taken from the dashboard's own pages"})
		return false
	}
	return true
}

// actionOn is the run a state-changing request acts on, once it is
// known to come from the dashboard's own page and the run is the
// viewer's; it answers the refusal itself.
func (s *Server) actionOn(w http.ResponseWriter, r *http.Request, v *viewer) (*runner.Run, bool) {
	if !sameOrigin(w, r) {
		return nil, false
	}
	run, status, err := s.runOf(r, v)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return nil, false
	}
	return run, true
}

// cancelRun asks the runner to stop a queued or running run.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, v *viewer) {
	run, ok := s.actionOn(w, r, v)
	if !ok {
		return
	}
	if runner.Finished(run.Status) {
		writeJSON(w, http.StatusConflict, map[string]string{"error": fmt.Sprintf("run %d has finished already (%s)", run.ID, run.Status)})
		return
	}
	if err := s.Runs.RequestCancel(run.ID); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"message": fmt.Sprintf("asked run %d to stop", run.ID)})
}

// rerunRun runs the same commit of the same pipeline again, as a push by
// the viewer.
func (s *Server) rerunRun(w http.ResponseWriter, r *http.Request, v *viewer) {
	run, ok := s.actionOn(w, r, v)
	if !ok {
		return
	}
	if s.Rerun == nil || run.Reason == "Manual" || run.Commit == "" {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this run came from a working tree: run it again with slipway pipeline run"})
		return
	}
	if err := s.Rerun(run, v.User.Name); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"message": fmt.Sprintf("%s runs %s again at %.12s", run.Pipeline, run.Ref, run.Commit)})
}

// logPoll is how often a run's stream looks at its record and logs: they
// are files of this machine, so no one else's server is asked.
const logPoll = 250 * time.Millisecond

// maxLogChunk bounds the text of one log event.
const maxLogChunk = 64 << 10

// runStream sends a run's state ("run" events, on each change) and its
// steps' logs ("log" events, as they are written; masked when the runner
// wrote them) until it finishes ("end").
func (s *Server) runStream(w http.ResponseWriter, r *http.Request, v *viewer) {
	run, status, err := s.runOf(r, v)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) {
		data, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
	}
	sent := map[string]int64{}
	var last []byte
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		if cur, err := s.Runs.Get(run.ID); err == nil {
			run = cur
		}
		if state, _ := json.Marshal(run); !bytes.Equal(state, last) {
			last = state
			send("run", run)
		}
		done := runner.Finished(run.Status)
		for _, st := range steps(run) {
			for {
				text, n := readLog(s.Runs.RunDir(run.ID), st.Log, sent[st.Log], done || runner.Finished(st.Status))
				if n == 0 {
					break
				}
				sent[st.Log] += n
				send("log", map[string]string{"step": st.Log, "text": text})
			}
		}
		if done {
			send("end", map[string]string{"status": run.Status})
			flusher.Flush()
			return
		}
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// steps are a run's steps that have a log, in order.
func steps(run *runner.Run) []runner.StepResult {
	var out []runner.StepResult
	for _, s := range run.Stages {
		for _, j := range s.Jobs {
			for _, st := range j.Steps {
				if st.Log != "" && filepath.IsLocal(st.Log) {
					out = append(out, st)
				}
			}
		}
	}
	return out
}

// readLog reads a log from offset: whole lines only while the step
// writes, so no event ends inside a line or a character; everything
// once it has finished. n is how many bytes were taken.
func readLog(runDir, name string, offset int64, finished bool) (string, int64) {
	f, err := os.Open(filepath.Join(runDir, name))
	if err != nil {
		return "", 0
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", 0
	}
	buf := make([]byte, maxLogChunk)
	n, _ := io.ReadFull(f, buf)
	buf = buf[:n]
	if n == maxLogChunk || !finished {
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf = buf[:i+1]
		} else if n == maxLogChunk {
			// One line longer than a chunk: cut it before a character
			// the chunk holds only the start of.
			i := len(buf) - 1
			for i > 0 && !utf8.RuneStart(buf[i]) {
				i--
			}
			if !utf8.FullRune(buf[i:]) {
				buf = buf[:i]
			}
		} else {
			buf = nil
		}
	}
	return string(buf), int64(len(buf))
}
