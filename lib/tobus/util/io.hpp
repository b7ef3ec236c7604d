#pragma once
// Whole reads and writes on file descriptors, as the programs' stdin and stdout need them.

#include <string>
#include <string_view>

#include "tobus/core/report.hpp"

namespace tobus {

// Ends the process by SIGPIPE, as cat does when its reader has gone: quietly, status 128+13.
[[noreturn]] void end_by_sigpipe();

// Writes all of `data` to the program's output `fd`. A reader that has gone (EPIPE) ends the
// process by SIGPIPE; any other error throws Error(failed).
void write_output(int fd, std::string_view data);

// Writes all of `data`; false on any error (errno says which). For pipes and files of our own.
bool write_fully(int fd, std::string_view data);

// Reads `fd` to its end. Throws Error(failed) naming `what` on a read error.
std::string read_all(int fd, std::string_view what);

// The first line of the file `path`, without its line end: a secret kept as redis-cli's and
// PostgreSQL's password files are. A regular file, read whole and bounded (4 KiB); one that other
// users may read is used, with a warning. Throws Error(usage) "cannot use the WHAT 'PATH': why".
std::string read_secret_file(const std::string& path, std::string_view what, const Reporter& report);

}  // namespace tobus
