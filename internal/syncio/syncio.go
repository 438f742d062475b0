// Package syncio has the one io helper several goroutines writing to one
// place need.
package syncio

import (
	"io"
	"sync"
)

// Writer passes each Write call to W whole, one at a time, so that lines
// written by goroutines running at once do not mix.
type Writer struct {
	mu sync.Mutex
	W  io.Writer
}

func (l *Writer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}
