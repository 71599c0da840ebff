package progress

import (
	"io"
	"sync"
	"time"
)

// maxQueued bounds the bytes an asyncWriter holds for a slow reader.
const maxQueued = 1 << 20

// asyncWriter writes whole lines to w from its own goroutine, so that a
// reader that stops reading never holds up a job: the runner hands records
// over between its checks of the time limit and of SIGTERM. What the
// reader has not taken while maxQueued bytes wait is dropped, a line at a
// time, so that the stream stays whole lines.
type asyncWriter struct {
	mu      sync.Mutex
	cond    *sync.Cond
	w       io.Writer
	queue   [][]byte
	queued  int
	closed  bool
	dropped int
	started bool // the goroutine runs from the first line on
	done    chan struct{}
}

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	return a
}

func (a *asyncWriter) loop() {
	defer close(a.done)
	for {
		a.mu.Lock()
		for len(a.queue) == 0 && !a.closed {
			a.cond.Wait()
		}
		if len(a.queue) == 0 {
			a.mu.Unlock()
			return
		}
		line := a.queue[0]
		a.queue = a.queue[1:]
		a.queued -= len(line)
		a.mu.Unlock()
		_, _ = a.w.Write(line) // a reader that went away: the job goes on unseen
	}
}

// writeLine queues a copy of line, or drops it when the queue is full.
func (a *asyncWriter) writeLine(line []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if a.queued+len(line) > maxQueued {
		a.dropped++
		return
	}
	a.queue = append(a.queue, append([]byte(nil), line...))
	a.queued += len(line)
	if !a.started {
		a.started = true
		go a.loop()
	}
	a.cond.Signal()
}

// close stops taking lines and waits at most grace for the reader to take
// the queued ones; it returns how many lines were dropped.
func (a *asyncWriter) close(grace time.Duration) int {
	a.mu.Lock()
	a.closed = true
	started := a.started
	a.cond.Signal()
	a.mu.Unlock()
	if !started {
		return a.dropped
	}
	select {
	case <-a.done:
	case <-time.After(grace):
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dropped + len(a.queue)
}
