// Package spawn starts and stops the processes wgnet leaves running after a
// command returns: the userspace WireGuard daemon and the confirmation timer. It
// owns the three things both need and that are easy to get subtly wrong:
//
//   - Start runs a child detached from the caller (its own process group, or
//     session), in "/", with stdin from /dev/null, stdout and stderr to a log
//     file, and exactly one more descriptor: the ready pipe. File descriptors
//     the caller inherited without close-on-exec (`wgnet up x.conf 7>&1 | cat`)
//     are not passed on, so a daemon never holds a caller's pipe open.
//     It waits for the child to write "ready" (Ready), with a timeout.
//   - WritePIDFile and ReadPIDFile keep a PID in a 0600 file of a trusted
//     0700 directory, never through a symbolic link.
//   - Stop signals a PID only while it is still the process the caller started
//     (its command line matches), SIGTERM then SIGKILL after a grace period.
//
// It imports atomicfile and trust of wgnet, and nothing else of it.
package spawn
