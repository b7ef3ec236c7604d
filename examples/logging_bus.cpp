// A custom bus written against the C++ API, the original's MsgBus subclass with
// msg_recv_callback / msg_send_callback: it logs every message it routes on stdout, refuses
// messages with a header `block`, and reroutes messages bound for `old` to `new`.
//
//   examples/logging-bus [-r URL]
#include <tobus/tobus.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  tobus::Program program("logging-bus", "An example bus with receive and send hooks.");
  return program.run(argc, argv, [&] {
    tobus::BusOptions options;
    options.hooks.on_receive = [](tobus::Message& m, std::string& reason) {
      for (const auto& [k, v] : m.headers)
        if (k == "block") {
          reason = "blocked by header";
          return false;
        }
      if (!m.route.empty() && m.route.front() == "old") m.route.front() = "new";
      std::printf("recv %s from %s\n", m.id.c_str(), m.from.c_str());
      std::fflush(stdout);
      return true;
    };
    options.hooks.on_send = [](const tobus::Message& m, const std::string& key) {
      std::printf("send %s to %s\n", m.id.c_str(), key.c_str());
      std::fflush(stdout);
    };
    return tobus::run_bus(program, options);
  });
}
