#pragma once
// What the programs trust without being told: the embedded server's directories and socket, and a
// server on 127.0.0.1:6379. Another local user must not be able to plant a directory, a socket or a
// server there and so read every message of the bus or inject messages its handlers run.

#include <string>

#include "tobus/core/report.hpp"

namespace tobus {

// Which of the embedded server's directories a path is: it names it in the messages.
enum class PrivateDir { runtime, data };

// Creates `path` (missing parents with plain mkdir, mode 0700), or accepts it when it exists, only
// as a directory of this user's (euid), not a symbolic link, that nobody else can write in; read
// and search access of others is taken away (mode 0700). Checked on the open directory, so a path
// swapped in between is caught. Throws Error(failed) with one line saying why not.
// A mode it tightens is reported (debug).
void make_private_dir(const std::string& path, PrivateDir which, const Reporter& report = {});

// Whether the embedded server's socket is there to connect to: false when it or its directory does
// not exist; true when it is a socket of this user's in a directory of this user's that nobody
// else can write in (not a symbolic link). Throws Error(failed) with one line saying why otherwise.
bool trusted_socket(const std::string& socket);

// Empty when the server listening on local TCP port `port` (on 127.0.0.1 or a wildcard address, as
// /proc/net/tcp and tcp6 tell) runs as this user, as root or as the system user redis; else why
// it is not trusted.
std::string untrusted_listener(int port);

}  // namespace tobus
