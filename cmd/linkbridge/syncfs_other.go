//go:build !unix

package main

// syncFiles does nothing where there is no sync(2).
func syncFiles() {}
