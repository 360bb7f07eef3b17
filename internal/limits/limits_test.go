package limits

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckMemory(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"512M", true}, {"2G", true}, {"1T", true}, {"65536K", true}, {"67108864", true}, {"50%", true}, {"100%", true},
		{"", false}, {"63M", false}, {"1", false}, {"2g", false}, {"2GB", false}, {"0%", false}, {"101%", false},
		{"-1G", false}, {"+1G", false}, {" 1G", false}, {"1.5G", false}, {"02G", false}, {"infinity", false},
		{"65T", false}, {"99999999999G", false}, {"1G;", false}, {"${x}", false}, {"%", false}, {"G", false},
	} {
		if err := CheckMemory(tc.in); (err == nil) != tc.ok {
			t.Errorf("CheckMemory(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestCheckCPUAndTasks(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"1%", true}, {"200%", true}, {"100000%", true}, {"0%", false}, {"100001%", false}, {"200", false}, {"2.5%", false}, {"", false}} {
		if err := CheckCPUQuota(tc.in); (err == nil) != tc.ok {
			t.Errorf("CheckCPUQuota(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
	for n, ok := range map[int]bool{0: false, 1: true, 100: true, 10000: true, 10001: false, -5: false} {
		if err := CheckCPUWeight(n); (err == nil) != ok {
			t.Errorf("CheckCPUWeight(%d) = %v", n, err)
		}
	}
	for n, ok := range map[int]bool{0: false, 1: true, 4096: true, MaxTasks: true, MaxTasks + 1: false, -1: false} {
		if err := CheckTasks(n); (err == nil) != ok {
			t.Errorf("CheckTasks(%d) = %v", n, err)
		}
	}
}

func TestLimitsCheckNamesEveryField(t *testing.T) {
	err := Limits{MemoryMax: "lots", CPUWeight: 20000, CPUQuota: "2", TasksMax: -1}.Check()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "memory_max" {
		t.Fatalf("first error %v, want memory_max", err)
	}
	for _, f := range []string{"memory_max", "cpu_weight", "cpu_quota", "tasks_max"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
	if err := (Limits{MemoryMax: "2G", CPUWeight: 50, CPUQuota: "150%", TasksMax: 512}).Check(); err != nil {
		t.Errorf("valid limits: %v", err)
	}
	if err := (Limits{}).Check(); err != nil {
		t.Errorf("no limits: %v", err)
	}
}

func TestOr(t *testing.T) {
	got := Limits{MemoryMax: "1G", TasksMax: 10}.Or(Limits{MemoryMax: "2G", CPUWeight: 50, CPUQuota: "100%", TasksMax: 99})
	want := Limits{MemoryMax: "1G", CPUWeight: 50, CPUQuota: "100%", TasksMax: 10}
	if got != want {
		t.Errorf("Or = %+v, want %+v", got, want)
	}
}

func TestParseLifetime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"3d", 72 * time.Hour}, {"12h", 12 * time.Hour}, {"90m", 90 * time.Minute}, {"2w", 14 * 24 * time.Hour}, {"366d", MaxExpireAfter}} {
		got, err := ParseLifetime(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "d", "0d", "3", "3D", "3s", "1.5d", "-3d", "367d", "53w", "9999999999h", "3d ", "03d"} {
		if _, err := ParseLifetime(in); err == nil {
			t.Errorf("ParseLifetime(%q) accepted", in)
		}
	}
}

func TestParseInt(t *testing.T) {
	if n, err := ParseInt("4096"); err != nil || n != 4096 {
		t.Errorf("ParseInt(4096) = %d, %v", n, err)
	}
	for _, in := range []string{"", "+1", "-1", "0x10", " 5", "5 ", "1e3", "99999999999"} {
		if _, err := ParseInt(in); err == nil {
			t.Errorf("ParseInt(%q) accepted", in)
		}
	}
}
