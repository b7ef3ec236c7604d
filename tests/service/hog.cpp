// svc-hog: a misbehaving handler for the limit tests.
//   svc-hog alloc MIB   allocates and touches MIB MiB; exit 0, or 3 when it cannot
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "alloc") {
    std::size_t mib = std::strtoull(argv[2], nullptr, 10);
    void* p = std::malloc(mib << 20);
    if (!p) {
      std::fprintf(stderr, "cannot allocate %zu MiB\n", mib);
      return 3;
    }
    std::memset(p, 1, mib << 20);
    std::printf("allocated %zu MiB\n", mib);
    std::free(p);
    return 0;
  }
  std::fprintf(stderr, "usage: svc-hog alloc MIB\n");
  return 2;
}
