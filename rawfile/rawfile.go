// Package rawfile reads and rewrites small files with plain system calls.
// The os package registers every file it opens with its poller, which for
// a regular file costs as much as the reading: a command on a host with 250
// sandboxes reads 250 records and rewrites 250 hosts files.
package rawfile

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// Read returns a file's content; a missing file gives an error that
// errors.Is matches with fs.ErrNotExist.
func Read(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	b, err := readFd(fd)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// Rewrite replaces a file's content in place, keeping its inode (what a
// sandbox sees through a bind mount changes with it), and returns, when
// asked, what it held before (existed false: it was created).
func Rewrite(path string, data []byte, readPrev bool) (prev []byte, existed bool, err error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	existed = err == nil
	if errors.Is(err, unix.ENOENT) {
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	}
	if err != nil {
		return nil, false, fmt.Errorf("write %s: %w", path, err)
	}
	defer unix.Close(fd)
	if existed && readPrev {
		if prev, err = readFd(fd); err != nil {
			return nil, false, fmt.Errorf("read %s: %w", path, err)
		}
	}
	if err = unix.Ftruncate(fd, 0); err == nil {
		for off := 0; off < len(data) && err == nil; {
			var n int
			n, err = unix.Pwrite(fd, data[off:], int64(off))
			if n == 0 && err == nil {
				err = io.ErrShortWrite
			}
			off += n
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("write %s: %w", path, err)
	}
	return prev, existed, nil
}

func readFd(fd int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, st.Size+1)
	for {
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
