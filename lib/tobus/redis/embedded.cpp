#include "tobus/redis/embedded.hpp"

#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>
#include <thread>
#include <vector>

#include "tobus/core/error.hpp"
#include "tobus/process/runner.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/trusted_dir.hpp"

namespace tobus {
namespace {

std::string last_line(const std::string& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

}  // namespace

std::unique_ptr<EmbeddedRedis> EmbeddedRedis::start(const std::string& socket, const std::string& data_dir,
                                                    Reporter report) {
  // Both must be ours alone: who controls the socket's directory can put a server of theirs in the
  // bus's place, and who controls the data directory reads and writes the AOF, every message.
  auto slash = socket.rfind('/');
  make_private_dir(slash == std::string::npos ? "." : slash == 0 ? "/" : socket.substr(0, slash),
                   PrivateDir::runtime, report);
  make_private_dir(data_dir, PrivateDir::data, report);
  const char* server_env = std::getenv("TOBUS_REDIS_SERVER");
  std::string server = server_env && *server_env ? server_env : "redis-server";
  std::string log = data_dir + "/redis.log";
  std::vector<std::string> args = {server,           "--port",       "0",
                                   "--unixsocket",   socket,         "--unixsocketperm",
                                   "700",            "--dir",        data_dir,
                                   "--appendonly",   "yes",          "--appendfsync",
                                   "everysec",       "--save",       "",
                                   "--daemonize",    "no",           "--logfile",
                                   log};
  args.front() = find_program(server);  // as posix_spawnp would, but spawn_in_group takes a path
  std::vector<std::string> env = inherited_environment();
  // Its own process group: Ctrl-C in the terminal reaches the bus, which stops the server last.
  pid_t pid = 0;
  int rc = args.front().empty() ? ENOENT : spawn_in_group(args, env, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, {}, pid);
  if (rc != 0)
    throw Error(ErrorKind::redis, "cannot start '" + server + "' for the embedded bus: " + std::strerror(rc) +
                                      " (apt-get install redis-server, or set TOBUS_REDIS)");

  RedisAddress address;
  address.kind = RedisAddress::Kind::unix_socket;
  address.path = socket;
  std::unique_ptr<EmbeddedRedis> self(new EmbeddedRedis(pid, address, std::move(report)));
  // A large AOF takes a while to load; the server answers LOADING meanwhile.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      self->pid_ = -1;
      throw Error(ErrorKind::redis, "embedded redis-server exited at start: " + last_line(log));
    }
    if (access(socket.c_str(), F_OK) == 0) {
      try {
        auto c = Connection::open(address, std::chrono::seconds(1));
        Reply r = c.command({"PING"});
        if (!r.is_error()) return self;
      } catch (const RedisError&) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw Error(ErrorKind::redis, "embedded redis-server did not answer on '" + socket + "' within 60s");
}

EmbeddedRedis::~EmbeddedRedis() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  report_.info("embedded redis-server stopped");
}

std::string default_socket_path() {
  if (const char* s = std::getenv("TOBUS_SOCKET"); s && *s) return s;
  if (const char* r = std::getenv("XDG_RUNTIME_DIR"); r && *r) return std::string(r) + "/tobus/redis.sock";
  return "/tmp/tobus-" + std::to_string(getuid()) + "/redis.sock";
}

std::string default_data_dir() {
  if (const char* s = std::getenv("TOBUS_DATA_DIR"); s && *s) return s;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/tobus";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/state/tobus";
  // Not /tmp/.local/...: another user could own /tmp/.local and swap the data directory under it.
  if (const struct passwd* pw = getpwuid(getuid()); pw && pw->pw_dir && *pw->pw_dir)
    return std::string(pw->pw_dir) + "/.local/state/tobus";
  return "/tmp/tobus-" + std::to_string(getuid()) + "-state";
}

RedisAddress find_redis(bool wait_for_bus, const Reporter& report) {
  RedisAddress embedded;
  embedded.kind = RedisAddress::Kind::unix_socket;
  embedded.path = default_socket_path();
  RedisAddress fallback;
  std::string untrusted;  // why the server answering at the fallback address is not used
  // `tobus-bus & tobus-module ...` pasted at once: the bus's embedded server needs a moment.
  auto deadline = std::chrono::steady_clock::now() + (wait_for_bus ? std::chrono::seconds(5) : std::chrono::seconds(0));
  for (;;) {
    // A socket in a directory another user controls is refused, not connected to (throws).
    if (trusted_socket(embedded.path) && redis_answers(embedded)) return embedded;
    // Any local user can listen on 6379: only a server of this user's, root's or redis's is used.
    if (redis_answers(fallback)) {
      untrusted = untrusted_listener(fallback.port);
      if (untrusted.empty()) return fallback;
    }
    if (!wait_for_bus || std::chrono::steady_clock::now() >= deadline || signals::stop_count() > 0) break;
    report.debug("no Redis at '{}' or '{}' yet, waiting for a bus to start one", embedded.display(),
                  fallback.display());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (untrusted.empty()) return fallback;  // nothing answers: connecting says so
  std::string where = "the Redis on " + fallback.host + ":" + std::to_string(fallback.port) + ": " + untrusted +
                      " (set TOBUS_REDIS=redis://" + fallback.host + ":" + std::to_string(fallback.port) +
                      " to use it)";
  if (wait_for_bus) throw Error(ErrorKind::failed, "refusing " + where);
  // tobus-bus starts its own server at the embedded socket instead.
  report.warn("ignoring {}", where);
  return embedded;
}

}  // namespace tobus
