#pragma once
// Signals as events: handlers only count the signal and write a byte to a self-pipe, so loops
// wait for Redis, children and signals in one poll().

namespace tobus::signals {

// Catches SIGINT, SIGTERM, SIGHUP and SIGCHLD; ignores SIGPIPE (hiredis 0.14 writes without
// MSG_NOSIGNAL; a closed socket must be an error, not death).
void install();
// Ignores SIGPIPE only; for programs that keep the default disposition of the others.
void ignore_sigpipe();

int fd();        // readable when a signal arrived since the last drain()
void drain();    // empties the pipe
int stop_count();   // SIGINT/SIGTERM received so far
int stop_signal();  // the first of them, or 0
bool take_child();  // a SIGCHLD arrived since the last call
bool take_hup();    // a SIGHUP arrived since the last call (reload)

// Stops the loops (Bus::run, Module::run) as a SIGTERM would, from any thread of the process:
// counted as a stop and written to the pipe. Needs install().
void request_stop();
// Forgets the stops so far, so loops can run again (tests that start and stop loops in turn).
void reset_stops();

// Ends the process by signal `sig` with its default action, so the parent sees 128+N.
[[noreturn]] void die_by(int sig);
// Ends the process by the first stop signal (SIGTERM if none came): die_by(stop_signal()).
[[noreturn]] void reraise_stop();

}  // namespace tobus::signals
