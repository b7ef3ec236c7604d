// Handler templates (tobus-module --init NAME --lang sh|python): a handler to start from, with the
// contract written in it.
#include "tobus/process/templates.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tobus/core/error.hpp"
#include "tobus/process/pool.hpp"
#include "tobus/util/io.hpp"

namespace tobus {
namespace {

constexpr std::string_view contract_text =
    R"TPL(# The contract (docs/service.md, tobus-module(1)):
#   stdin    the message's payload, bytes (with --workdir also the file ./input)
#   stdout   the result: the payload sent on to the next hop. Logs and diagnostics go to stderr.
#   exit 0   success: stdout goes on along the route
#   exit 75  a temporary failure (EX_TEMPFAIL): the module runs it again later, with backoff
#   other    failure: the message is dead-lettered with this code and the last line of stderr
#
# Environment:
#   TOBUS_ID             the message id
#   TOBUS_MODULE         this module's name
#   TOBUS_FROM           the previous hop, or the sender
#   TOBUS_ROUTE          the hops still to go after this one, comma-separated
#   TOBUS_ATTEMPT        1 on the first run, more on retries and redeliveries
#   TOBUS_REDIS          the bus's Redis URL; TOBUS_NAMESPACE its key prefix
#   TOBUS_HEADER_<NAME>  each header of the message (NAME upper-cased, other characters '_')
#   TOBUS_JOB            this job's state record: tobus-state set "$TOBUS_JOB" progress=40
#   TOBUS_WORKDIR        the job's work dir, also the current directory (tobus-module --workdir)
# Under tobus-module --once there is no bus: TOBUS_JOB and TOBUS_REDIS are empty, TOBUS_ONCE=1.
)TPL";

std::string sh_template(const std::string& name) {
  return "#!/bin/sh\n# " + name + ": a tobus handler, run once per message:\n#   tobus-module " + name +
         " ./" + name + "        or as a service in a pool: tobus-module NAME --pool DIR\n#\n" +
         std::string(contract_text) + R"TPL(
set -eu

# Sets fields of this job's state record, when there is one (not under --once).
report() {
  if [ -n "${TOBUS_JOB:-}" ]; then tobus-state set "$TOBUS_JOB" "$@" >&2 || true; fi
}

echo "handling ${TOBUS_ID:-a message} (attempt ${TOBUS_ATTEMPT:-1})" >&2
report progress=0

# The work: read the payload on stdin, write the result on stdout. Replace `cat` with yours;
# `exit 75` asks for a retry, any other failure dead-letters the message.
cat

report progress=100
)TPL";
}

std::string python_template(const std::string& name) {
  std::string contract;
  for (std::size_t start = 0; start < contract_text.size();) {
    auto nl = contract_text.find('\n', start);
    auto line = contract_text.substr(start, nl - start);
    contract += line.size() > 2 ? std::string(line.substr(2)) : std::string();
    contract += '\n';
    start = nl + 1;
  }
  return "#!/usr/bin/env python3\n\"\"\"" + name +
         ": a tobus handler, run once per message:\n    tobus-module " + name + " ./" + name +
         "        or as a service in a pool: tobus-module NAME --pool DIR\n\n" + contract +
         R"TPL("""

import os
import subprocess
import sys


class Retry(Exception):
    """Raise it to ask for a retry later (exit code 75)."""


def report(**fields):
    """Sets fields of this job's state record, when there is one (not under --once)."""
    job = os.environ.get("TOBUS_JOB")
    if not job:
        return
    args = ["tobus-state", "set", job] + [f"{k}={v}" for k, v in fields.items()]
    try:
        subprocess.run(args, stdout=sys.stderr, check=False)
    except OSError as e:
        print(f"cannot report {fields}: {e}", file=sys.stderr)


def handle(payload: bytes) -> bytes:
    """The work: replace it with yours. Any exception but Retry dead-letters the message."""
    return payload


def main() -> int:
    payload = sys.stdin.buffer.read()
    print(f"handling {os.environ.get('TOBUS_ID', 'a message')} "
          f"(attempt {os.environ.get('TOBUS_ATTEMPT', '1')})", file=sys.stderr)
    report(progress=0)
    try:
        result = handle(payload)
    except Retry as e:
        print(f"retry: {e}", file=sys.stderr)
        return 75
    sys.stdout.buffer.write(result)
    sys.stdout.flush()
    report(progress=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
)TPL";
}

}  // namespace

std::string write_template(const std::string& dir, const std::string& name, const std::string& lang) {
  if (!valid_service_name(name))
    throw Error(ErrorKind::usage, "bad handler name '" + name +
                                      "': names are 1-64 of A-Z a-z 0-9 _ . -, not starting with '.'");
  std::string text;
  if (lang == "sh")
    text = sh_template(name);
  else if (lang == "python")
    text = python_template(name);
  else
    throw Error(ErrorKind::usage, "unknown language '" + lang + "': sh or python");
  std::string path = (dir.empty() ? std::string(".") : dir) + "/" + name;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  if (fd < 0 && errno == EEXIST) throw Error(ErrorKind::failed, "'" + path + "' exists, not overwriting it");
  if (fd < 0) throw Error(ErrorKind::failed, "cannot create '" + path + "': " + std::strerror(errno));
  bool ok = write_fully(fd, text);
  int e = errno;
  // The mode given to open() passes through the umask; a handler must be executable.
  fchmod(fd, 0755);
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    throw Error(ErrorKind::failed, "cannot write '" + path + "': " + std::strerror(e));
  }
  return path;
}

}  // namespace tobus
