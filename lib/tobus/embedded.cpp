#include "tobus/embedded.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "tobus/error.hpp"
#include "tobus/redis.hpp"
#include "tobus/runner.hpp"
#include "tobus/trusted_dir.hpp"

extern char** environ;

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

std::unique_ptr<EmbeddedRedis> EmbeddedRedis::start(const std::string& socket, const std::string& data_dir) {
  // Both must be ours alone: who controls the socket's directory can put a server of theirs in the
  // bus's place, and who controls the data directory reads and writes the AOF, every message.
  auto slash = socket.rfind('/');
  make_private_dir(slash == std::string::npos ? "." : slash == 0 ? "/" : socket.substr(0, slash),
                   PrivateDir::runtime);
  make_private_dir(data_dir, PrivateDir::data);
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
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  // Its own process group: Ctrl-C in the terminal reaches the bus, which stops the server last.
  pid_t pid = 0;
  int rc = args.front().empty() ? ENOENT : spawn_in_group(args, env, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, {}, pid);
  if (rc != 0)
    throw Error(ErrorKind::redis, "cannot start '" + server + "' for the embedded bus: " + std::strerror(rc) +
                                      " (apt-get install redis-server, or set TOBUS_REDIS)");

  RedisAddress address;
  address.kind = RedisAddress::Kind::unix_socket;
  address.path = socket;
  std::unique_ptr<EmbeddedRedis> self(new EmbeddedRedis(pid, address));
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
  spdlog::info("embedded redis-server stopped");
}

}  // namespace tobus
