package sqlite_test

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procStat is what the process has used so far: CPU time and bytes written
// through write system calls. ok is false when they cannot be read.
type procStat struct {
	cpu   time.Duration
	wchar int64
	syscw int64
	ok    bool
}

// readProcStat reads the process's CPU time (getrusage) and write counts
// (/proc/self/io).
func readProcStat() procStat {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return procStat{}
	}
	s := procStat{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ok: true}
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return procStat{}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := bytes.Cut(sc.Bytes(), []byte(": "))
		n, _ := strconv.ParseInt(string(v), 10, 64)
		switch string(k) {
		case "wchar":
			s.wchar = n
		case "syscw":
			s.syscw = n
		}
	}
	return s
}
