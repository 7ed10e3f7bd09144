//go:build unix

package main

import "syscall"

// syncFiles asks the kernel to write out every dirty page (sync(2)).
func syncFiles() { syscall.Sync() }
