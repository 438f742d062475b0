package runner

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// secrets are the values no log may show. A step may add one while it
// runs (##vso[task.setvariable issecret=true]).
type secrets struct {
	mu     sync.Mutex
	values []string
}

// minSecretLen: shorter values would blank out ordinary text.
const minSecretLen = 3

func (s *secrets) add(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, part := range append([]string{v}, strings.Split(v, "\n")...) {
		part = strings.TrimRight(part, "\r")
		if len(part) >= minSecretLen {
			s.values = append(s.values, part)
			// The form a logging command carries it in (%3B for ;),
			// which the line that set it shows.
			if e := escape(part); e != part {
				s.values = append(s.values, e)
			}
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
}

// safeCut returns where raw may be cut, at or before at, so that no
// secret is split in two (each half would go unmasked): not inside an
// occurrence, and not so near the end that one may still be arriving.
// It returns 0 when no cut is safe yet.
func (s *secrets) safeCut(raw []byte, at int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.values) > 0 {
		at = min(at, len(raw)-(len(s.values[0])-1)) // values[0] is the longest
	}
	for moved := true; moved && at > 0; {
		moved = false
		for _, v := range s.values {
			from := max(0, at-len(v)+1)
			to := min(len(raw), at+len(v)-1)
			if from >= to {
				continue
			}
			if i := bytes.Index(raw[from:to], []byte(v)); i >= 0 && from+i < at {
				at, moved = from+i, true
			}
		}
	}
	return max(at, 0)
}

// Mask replaces every secret in text with ***.
func (s *secrets) Mask(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.values {
		text = strings.ReplaceAll(text, v, "***")
	}
	return text
}

// command is a logging command a step printed: ##vso[area.action k=v;...]message.
type command struct {
	name    string // such as task.setvariable
	props   map[string]string
	message string
}

// parseCommand recognises ##vso[...] commands and the ##[error] and
// ##[warning] formatting lines.
func parseCommand(line string) (command, bool) {
	t := strings.TrimLeft(line, " \t")
	if rest, ok := strings.CutPrefix(t, "##[error]"); ok {
		return command{name: "task.logissue", props: map[string]string{"type": "error"}, message: rest}, true
	}
	if rest, ok := strings.CutPrefix(t, "##[warning]"); ok {
		return command{name: "task.logissue", props: map[string]string{"type": "warning"}, message: rest}, true
	}
	rest, ok := strings.CutPrefix(t, "##vso[")
	if !ok {
		return command{}, false
	}
	head, message, ok := strings.Cut(rest, "]")
	if !ok {
		return command{}, false
	}
	name, propText, _ := strings.Cut(head, " ")
	c := command{name: strings.ToLower(name), props: map[string]string{}, message: unescape(message)}
	for _, kv := range strings.Split(propText, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			c.props[strings.ToLower(k)] = unescape(v)
		}
	}
	return c, true
}

func unescape(s string) string {
	return strings.NewReplacer("%AZP25", "%", "%3B", ";", "%0D", "\r", "%0A", "\n", "%5D", "]").Replace(s)
}

// escape is unescape's inverse: a value as a logging command writes it.
func escape(s string) string {
	return strings.NewReplacer("%", "%AZP25", ";", "%3B", "\r", "%0D", "\n", "%0A", "]", "%5D").Replace(s)
}

// Bounds on a step's output, so that a step cannot fill the platform's
// memory or disk: a longer line is cut into lines of maxLineBytes, and
// past maxStepLogBytes the log keeps nothing more (logging commands
// still act).
const (
	maxLineBytes    = 64 << 10
	maxStepLogBytes = 64 << 20
)

// output takes a step's stdout and stderr, line by line: it acts on
// logging commands, masks secrets, and writes the lines to the log.
type output struct {
	mu        sync.Mutex
	log       io.Writer
	secrets   *secrets
	onCommand func(command)
	sawStderr bool
	// written counts the step's own output; full is set once it passed
	// maxStepLogBytes.
	written int
	full    bool
}

// stream is one of the step's two output streams.
type stream struct {
	o      *output
	stderr bool
	buf    bytes.Buffer
}

func (o *output) stream(stderr bool) *stream { return &stream{o: o, stderr: stderr} }

func (s *stream) Write(p []byte) (int, error) {
	s.buf.Write(p)
	for {
		i := bytes.IndexByte(s.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(s.buf.Next(i + 1))
		s.o.line(strings.TrimSuffix(line, "\n"), s.stderr)
	}
	for s.buf.Len() > maxLineBytes {
		cut := s.o.secrets.safeCut(s.buf.Bytes(), maxLineBytes)
		if cut == 0 {
			break
		}
		s.o.line(string(s.buf.Next(cut)), s.stderr)
	}
	return len(p), nil
}

// Close writes what is left after the last newline.
func (s *stream) Close() error {
	if s.buf.Len() > 0 {
		s.o.line(s.buf.String(), s.stderr)
		s.buf.Reset()
	}
	return nil
}

func (o *output) line(text string, stderr bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if stderr && strings.TrimSpace(text) != "" {
		o.sawStderr = true
	}
	if c, ok := parseCommand(text); ok && o.onCommand != nil {
		o.onCommand(c) // may add a secret, which this very line must not show
	}
	if o.full {
		return
	}
	o.written += len(text) + 1
	if o.written > maxStepLogBytes {
		o.full = true
		_, _ = fmt.Fprintf(o.log, "##[warning]the step wrote more than %d MiB; the rest of its output is not kept\n", maxStepLogBytes>>20)
		return
	}
	_, _ = io.WriteString(o.log, o.secrets.Mask(text)+"\n")
}

// note writes a line of the runner's own (step headers, results).
func (o *output) note(text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = io.WriteString(o.log, o.secrets.Mask(text)+"\n")
}
