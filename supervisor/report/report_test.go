package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// syncLog records writes and fsyncs in order.
type syncLog struct {
	buf bytes.Buffer
	ops []string
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.ops = append(s.ops, "write")
	return s.buf.Write(p)
}

func (s *syncLog) Sync() error {
	s.ops = append(s.ops, "sync")
	return nil
}

var _ SyncWriter = (*syncLog)(nil)

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func TestRecordsBufferedUntilAttachThenFsyncedEach(t *testing.T) {
	var console, port bytes.Buffer
	r := New(&console, fixedClock())
	r.SetPort(&port)
	end := r.Step("load modules") // before the job disk is there
	_ = end(nil)
	res, lg := &syncLog{}, &syncLog{}
	if err := r.Attach(res, lg); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.ops, ","); got != "write,sync,write,sync" {
		t.Errorf("buffered records: ops %s, want each write followed by fsync", got)
	}
	_ = r.Step("backup")(errors.New("borg create: exit status 2:\nRepository does not exist"))
	_ = r.Record(job.Progress{Files: 1}.Record())
	if err := r.Done(job.Done{Archive: "a1", ReadyAfter: 5 * time.Second}, errors.New("backup failed\nsecond line")); err != nil {
		t.Fatal(err)
	}
	ops := strings.Join(res.ops, ",")
	if strings.Contains(ops, "write,write") {
		t.Errorf("a record was not fsynced before the next: %s", ops)
	}
	if lg.ops[len(lg.ops)-1] != "sync" {
		t.Errorf("job.log not fsynced at the end: %v", lg.ops)
	}
	parsed, err := job.ParseResult(res.buf.Bytes())
	if err != nil {
		t.Fatalf("ParseResult: %v\n%s", err, res.buf.String())
	}
	d := parsed.Done
	if d.Status != job.StatusFailed || d.Error != "backup failed | second line" || d.Archive != "a1" || d.ReadyAfter != 5*time.Second {
		t.Errorf("done record = %+v", d)
	}
	if len(parsed.Records) != 6 {
		t.Errorf("%d records, want 6", len(parsed.Records))
	}
	if st := parsed.Records[3].Step; st.Error != "borg create: exit status 2: | Repository does not exist" || st.Elapsed <= 0 {
		t.Errorf("step end record = %+v", st)
	}
	if port.String() != res.buf.String() {
		t.Errorf("progress port got other records than the result file:\n%s\n---\n%s", port.String(), res.buf.String())
	}
	if !strings.Contains(console.String(), "step backup FAILED") || strings.Contains(console.String(), "progress") {
		t.Errorf("console:\n%s", console.String())
	}
	if !strings.Contains(lg.buf.String(), "step load modules ok") {
		t.Errorf("early log lines missing from job.log:\n%s", lg.buf.String())
	}
	if err := r.Record(job.Step{Name: "late"}.Record()); err == nil || !r.IsDone() {
		t.Error("record after done accepted")
	}
}

// A record without its payload would be refused by hostctl with the whole
// result: the reporter refuses to write it.
func TestRecordWithoutPayload(t *testing.T) {
	res := &syncLog{}
	r := New(&bytes.Buffer{}, fixedClock())
	_ = r.Attach(res, &syncLog{})
	if err := r.Record(job.Record{Type: job.RecStats}); err == nil || res.buf.Len() != 0 {
		t.Errorf("stats record without stats: %v, wrote %q", err, res.buf.String())
	}
	if err := r.Record(job.Record{Type: job.RecStep, Stats: &job.Stats{}}); err == nil {
		t.Error("step record with stats accepted")
	}
}

func TestDoneOK(t *testing.T) {
	res := &syncLog{}
	r := New(&bytes.Buffer{}, fixedClock())
	_ = r.Attach(res, &syncLog{})
	_ = r.Done(job.Done{BackendElapsed: time.Minute}, nil)
	p, err := job.ParseResult(res.buf.Bytes())
	if err != nil || p.Done.Status != job.StatusOK || p.Done.Error != "" || p.Done.BackendElapsed != time.Minute {
		t.Fatalf("done = %+v, %v", p.Done, err)
	}
}

func TestDoneWarning(t *testing.T) {
	res := &syncLog{}
	r := New(&bytes.Buffer{}, fixedClock())
	_ = r.Attach(res, &syncLog{})
	_ = r.Done(job.Done{Warnings: job.Warnings{Warning: "borg create: exit status 1:\ndata/x: read: [Errno 5] Input/output error",
		Unreadable: []string{"data/x"}, UnreadableCount: 1}}, nil)
	p, err := job.ParseResult(res.buf.Bytes())
	if err != nil || p.Done.Status != job.StatusWarning || p.Done.Warning != "borg create: exit status 1: | data/x: read: [Errno 5] Input/output error" ||
		len(p.Done.Unreadable) != 1 || p.Done.UnreadableCount != 1 {
		t.Fatalf("done = %+v, %v", p.Done, err)
	}
}

func TestDoneFailedDropsWarnings(t *testing.T) {
	res := &syncLog{}
	r := New(&bytes.Buffer{}, fixedClock())
	_ = r.Attach(res, &syncLog{})
	_ = r.Done(job.Done{Warnings: job.Warnings{Warning: "w", Unreadable: []string{"a"}, UnreadableCount: 1}}, errors.New("retention: boom"))
	p, err := job.ParseResult(res.buf.Bytes())
	if err != nil || p.Done.Status != job.StatusFailed || p.Done.Warning != "" || p.Done.Unreadable != nil || p.Done.Error != "retention: boom" {
		t.Fatalf("done = %+v, %v", p.Done, err)
	}
}
