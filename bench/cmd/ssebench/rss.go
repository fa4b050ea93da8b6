package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// sumRSS returns the summed VmRSS of pids in kB (0 for no pids).
func sumRSS(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		kb, err := vmRSS(pid)
		if err != nil {
			return 0, err
		}
		total += kb
	}
	return total, nil
}

// vmRSS reads VmRSS from /proc/<pid>/status, in kB.
func vmRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of pid %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
