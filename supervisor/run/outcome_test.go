package run

import (
	"reflect"
	"testing"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestAfterBackup(t *testing.T) {
	done := job.Done{Archive: "web-1"}
	got, retain := afterBackup(done, job.Stats{Files: 10})
	if !retain || !reflect.DeepEqual(got, done) {
		t.Errorf("ok backup: %+v, retain %v", got, retain)
	}
	warn := job.Warnings{Warning: "borg create finished with warnings (exit status 1)", Unreadable: []string{"data/x"}, UnreadableCount: 1}
	got, retain = afterBackup(done, job.Stats{Files: 10, Warnings: warn})
	want := job.Done{Archive: "web-1", Warnings: warn}
	if retain || !reflect.DeepEqual(got, want) {
		t.Errorf("backup with warnings: %+v, retain %v: want no retention and the warning in the done record", got, retain)
	}
}
