// Package limits parses and checks a container's resource limits (systemd
// settings of its container@NAME unit) and its lifetime (--expire-after).
//
// Every value is checked against a grammar narrower than systemd's own, so
// that what passes means one thing to systemd and is safe to write into the
// generated Nix (it still goes through the Nix escaper there). The same
// checks run on the laptop (`devhost check`, `devhost up`) and on the
// devhost (`devhost ensure`, the registry, the host configuration).
package limits

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds of the values, chosen with systemd's: CPUWeight= takes 1..10000;
// a quota above 100% per core of a very large machine or a task limit in
// the billions is a typo, not a wish.
const (
	MinCPUWeight   = 1
	MaxCPUWeight   = 10000
	MaxCPUQuota    = 100000 // percent: 1000 cores
	MaxTasks       = 4194304
	MaxExpireAfter = 366 * 24 * time.Hour
)

// Limits are a container's resource limits; the zero value of a field
// means "not set" (the host's default applies, or no limit). The JSON
// names are those of the registry and `devhost status --json`.
type Limits struct {
	// MemoryMax is systemd's MemoryMax=: a size with a K, M, G or T suffix
	// (base 1024) or bytes, e.g. "512M", "2G"; or a percentage of the
	// host's memory, "50%".
	MemoryMax string `json:"memory_max"`
	// CPUWeight is CPUWeight=, 1..10000 (systemd's default is 100).
	CPUWeight int `json:"cpu_weight"`
	// CPUQuota is CPUQuota=, a percentage of one CPU, e.g. "200%" for two.
	CPUQuota string `json:"cpu_quota"`
	// TasksMax is TasksMax=, the most processes and threads.
	TasksMax int `json:"tasks_max"`
}

// Or returns l with every unset field taken from d (the host's defaults).
func (l Limits) Or(d Limits) Limits {
	if l.MemoryMax == "" {
		l.MemoryMax = d.MemoryMax
	}
	if l.CPUWeight == 0 {
		l.CPUWeight = d.CPUWeight
	}
	if l.CPUQuota == "" {
		l.CPUQuota = d.CPUQuota
	}
	if l.TasksMax == 0 {
		l.TasksMax = d.TasksMax
	}
	return l
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// FieldError is a bad value of one limit; Field is its registry/host
// configuration name (memory_max, cpu_weight, cpu_quota, tasks_max).
type FieldError struct {
	Field string
	Value string
	Err   error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: %v", e.Field, e.Value, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Check returns the Problems joined with errors.Join, or nil.
func (l Limits) Check() error {
	var errs []error
	for _, p := range l.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// Problems returns one *FieldError per bad field, in field order.
func (l Limits) Problems() []*FieldError {
	var errs []*FieldError
	if l.MemoryMax != "" {
		if err := CheckMemory(l.MemoryMax); err != nil {
			errs = append(errs, &FieldError{"memory_max", l.MemoryMax, err})
		}
	}
	if l.CPUWeight != 0 {
		if err := CheckCPUWeight(l.CPUWeight); err != nil {
			errs = append(errs, &FieldError{"cpu_weight", strconv.Itoa(l.CPUWeight), err})
		}
	}
	if l.CPUQuota != "" {
		if err := CheckCPUQuota(l.CPUQuota); err != nil {
			errs = append(errs, &FieldError{"cpu_quota", l.CPUQuota, err})
		}
	}
	if l.TasksMax != 0 {
		if err := CheckTasks(l.TasksMax); err != nil {
			errs = append(errs, &FieldError{"tasks_max", strconv.Itoa(l.TasksMax), err})
		}
	}
	return errs
}

// digits parses a run of 1..10 ASCII digits without sign or leading zero.
func digits(s string) (int64, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

var memoryUnits = map[byte]int64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}

// minMemory is the smallest MemoryMax worth having: a NixOS container
// does not boot in less.
const minMemory = 64 << 20

// CheckMemory accepts a systemd size ("512M", "2G", "1073741824") of at
// least 64M and at most 64T, or a percentage "1%".."100%".
func CheckMemory(s string) error {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, ok := digits(p)
		if !ok || n < 1 || n > 100 {
			return errors.New("a percentage of the host's memory is 1% to 100%")
		}
		return nil
	}
	num, mult := s, int64(1)
	if s != "" {
		if m, ok := memoryUnits[s[len(s)-1]]; ok {
			num, mult = s[:len(s)-1], m
		}
	}
	n, ok := digits(num)
	if !ok {
		return errors.New(`write a size like "512M" or "2G" (K, M, G, T: powers of 1024) or a percentage like "50%"`)
	}
	if n*mult < minMemory || n*mult > 64<<40 {
		return errors.New("a container needs at least 64M, and at most 64T can be meant")
	}
	return nil
}

// CheckCPUWeight accepts systemd's CPUWeight= range.
func CheckCPUWeight(n int) error {
	if n < MinCPUWeight || n > MaxCPUWeight {
		return fmt.Errorf("the CPU weight is %d to %d (systemd's default is 100)", MinCPUWeight, MaxCPUWeight)
	}
	return nil
}

// CheckCPUQuota accepts "N%" with N from 1 to MaxCPUQuota: percent of one
// CPU, so "200%" is two CPUs' time.
func CheckCPUQuota(s string) error {
	p, ok := strings.CutSuffix(s, "%")
	n, nok := digits(p)
	if !ok || !nok || n < 1 || n > MaxCPUQuota {
		return errors.New(`write a percentage of one CPU, e.g. "50%" or "200%" for two CPUs`)
	}
	return nil
}

// CheckTasks accepts 1..MaxTasks.
func CheckTasks(n int) error {
	if n < 1 || n > MaxTasks {
		return fmt.Errorf("the task limit is a whole number from 1 to %d", MaxTasks)
	}
	return nil
}

// ParseInt reads a limit given as text (a flag, environment.cfg): ASCII
// digits only, so "+5", "0x10" or " 5" are refused rather than guessed.
func ParseInt(s string) (int, error) {
	n, ok := digits(s)
	if !ok {
		return 0, errors.New("write a whole number without sign or spaces")
	}
	return int(n), nil
}

var lifetimeUnits = map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}

// ParseLifetime reads an --expire-after duration: a whole number and one
// unit, m(inutes), h(ours), d(ays) or w(eeks), e.g. "3d", "12h"; from one
// minute up to MaxExpireAfter.
func ParseLifetime(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q: write a whole number and a unit m, h, d or w, e.g. \"3d\" or \"12h\" (at most 366d)", s)
	if len(s) < 2 {
		return 0, bad
	}
	unit, ok := lifetimeUnits[s[len(s)-1]]
	n, nok := digits(s[:len(s)-1])
	if !ok || !nok || n < 1 {
		return 0, bad
	}
	if n > int64(MaxExpireAfter/unit) {
		return 0, bad
	}
	return time.Duration(n) * unit, nil
}
