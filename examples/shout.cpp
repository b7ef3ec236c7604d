// A module written against the C++ API: upper-cases every payload. The original's
//   class CoreEngineModule(ModuleBase): ... msg = self.recv_queue.get() ... self.send_queue.put(msg)
// becomes one handler callback.
//
//   examples/shout [-r URL]        then: tobus-send --to shout -m hello --wait   →  HELLO
#include <tobus/tobus.hpp>

#include <cctype>

int main(int argc, char** argv) {
  tobus::Program program("shout", "An example module: upper-cases every message.");
  return program.run(argc, argv, [&] {
    tobus::ModuleOptions options;
    options.name = "shout";
    options.handler = [](const tobus::Message& m, int /*attempt*/) {
      std::string out = m.payload;
      for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return tobus::Outcome::ok(std::move(out));
    };
    return tobus::run_module(program, options);
  });
}
