#pragma once
// Whole reads and writes on file descriptors, as the programs' stdin and stdout need them.

#include <string>
#include <string_view>

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

}  // namespace tobus
