package lvm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseLVs(t *testing.T) {
	out := []byte(`{"report":[{"lv":[
		{"vg_name":"vg0","lv_name":"web","lv_path":"/dev/vg0/web","lv_size":"10737418240B","lv_attr":"owi-aos---","origin":"","pool_lv":"","data_percent":""},
		{"vg_name":"vg0","lv_name":"web-snap","lv_path":"/dev/vg0/web-snap","lv_size":"10737418240B","lv_attr":"swi-a-s---","origin":"web","pool_lv":"","data_percent":"3.25"},
		{"vg_name":"vg0","lv_name":"thin1","lv_path":"/dev/vg0/thin1","lv_size":"1073741824B","lv_attr":"Vwi-a-tz--","origin":"","pool_lv":"pool","data_percent":"40.00"},
		{"vg_name":"vg0","lv_name":"gone","lv_path":"/dev/vg0/gone","lv_size":"1073741824B","lv_attr":"swi-I-s---","origin":"web","pool_lv":"","data_percent":"100.00"}
	]}]}`)
	lvs, err := ParseLVs(out)
	if err != nil || len(lvs) != 4 {
		t.Fatalf("ParseLVs = %v, %v", lvs, err)
	}
	if lvs[0].Size != 10<<30 || lvs[0].Thin() || !lvs[0].Active() || lvs[0].ID() != "vg0/web" {
		t.Errorf("origin %+v", lvs[0])
	}
	if lvs[1].Origin != "web" || lvs[1].DataPercent != 3.25 {
		t.Errorf("snapshot %+v", lvs[1])
	}
	if !lvs[2].Thin() || lvs[2].Pool != "pool" {
		t.Errorf("thin %+v", lvs[2])
	}
	if !lvs[3].Invalid() {
		t.Errorf("invalid snapshot %+v", lvs[3])
	}
}

func TestSnapshotSize(t *testing.T) {
	for _, tc := range []struct {
		origin, abs int64
		pct         float64
		want        int64
	}{
		{10 << 30, 0, 0, 2 << 30},         // default 20%
		{10 << 30, 0, 50, 5 << 30},        // percent
		{10 << 30, 1 << 30, 50, 1 << 30},  // absolute wins
		{100 << 20, 0, 0, 100 << 20},      // at least the minimum, at most the origin
		{4 << 30, 0, 1, MinSnapshotSize},  // minimum
		{10 << 30, 20 << 30, 0, 10 << 30}, // never more than the origin
	} {
		if got := SnapshotSize(tc.origin, tc.abs, tc.pct); got != tc.want {
			t.Errorf("SnapshotSize(%d, %d, %v) = %d, want %d", tc.origin, tc.abs, tc.pct, got, tc.want)
		}
	}
}

// fakeLVM serves fill levels that rise with every poll.
type fakeLVM struct {
	mu    sync.Mutex
	fills []float64
	polls int
}

func (f *fakeLVM) Lookup(context.Context, string) (*LV, error) { return nil, ErrNotLV }
func (f *fakeLVM) Snapshot(context.Context, *LV, string, int64) (*LV, error) {
	return nil, errors.New("no")
}
func (f *fakeLVM) Remove(context.Context, string, string) error { return nil }
func (f *fakeLVM) Create(context.Context, string, string, int64) (*LV, error) {
	return nil, errors.New("no")
}
func (f *fakeLVM) Get(_ context.Context, vg, name string) (*LV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.polls, len(f.fills)-1)
	f.polls++
	return &LV{VG: vg, Name: name, Attr: "swi-a-s---", DataPercent: f.fills[i]}, nil
}

var _ Manager = (*fakeLVM)(nil)

func TestGuardFires(t *testing.T) {
	f := &fakeLVM{fills: []float64{1, 30, 60, 85, 90}}
	g := &Guard{M: f, Snaps: []*LV{{VG: "vg0", Name: "s"}}, Limit: 80, Interval: time.Millisecond}
	err := g.Run(context.Background())
	var oe *OverflowError
	if !errors.As(err, &oe) || oe.Percent != 85 || oe.LV != "vg0/s" {
		t.Fatalf("Run = %v", err)
	}
}

func TestGuardQuietUntilCancelled(t *testing.T) {
	f := &fakeLVM{fills: []float64{1, 2, 3}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	g := &Guard{M: f, Snaps: []*LV{{VG: "vg0", Name: "s"}}, Interval: time.Millisecond}
	if err := g.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if f.polls < 3 {
		t.Errorf("polled %d times", f.polls)
	}
}

// TestCreate: a cache volume is a plain lvcreate in the VG (no old
// signature, zeroed start), looked up again, its first MiB zeroed.
func TestCreate(t *testing.T) {
	var calls []string
	var zeroed string
	c := &CLI{
		Run: func(_ context.Context, argv ...string) ([]byte, error) {
			calls = append(calls, strings.Join(argv, " "))
			if argv[1] == "lvs" {
				return []byte(`{"report":[{"lv":[{"vg_name":"vg0","lv_name":"hostctl-cache-web","lv_path":"/dev/vg0/hostctl-cache-web","lv_size":"8589934592B","lv_attr":"-wi-a-----","origin":"","pool_lv":"","data_percent":""}]}]}`), nil
			}
			return nil, nil
		},
		Zero: func(path string, n int64) error { zeroed = fmt.Sprintf("%s %d", path, n); return nil },
	}
	lv, err := c.Create(context.Background(), "vg0", "hostctl-cache-web", 8<<30)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lvm lvcreate --yes --wipesignatures y --zero y -n hostctl-cache-web -L 8589934592b vg0",
		"lvm lvs --reportformat json --units b -o " + lvFields + " vg0/hostctl-cache-web",
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	if lv.Path != "/dev/vg0/hostctl-cache-web" || zeroed != "/dev/vg0/hostctl-cache-web 1048576" {
		t.Errorf("lv %+v, zeroed %q", lv, zeroed)
	}
	if _, err := c.Create(context.Background(), "vg0", "x", 0); err == nil {
		t.Error("a size of 0 is refused")
	}
}
