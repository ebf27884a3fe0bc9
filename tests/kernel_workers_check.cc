// Built by tests/test_kernel_workers.py with ThreadSanitizer: three threads
// call rflo_workers::for_each at once, with counts and thread numbers that
// change from call to call, and every item must be done exactly once.  Exits
// non-zero on a wrong result, and ThreadSanitizer exits 66 on a data race.
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "workers.h"

int main() {
  std::atomic<int> wrong{0};
  auto caller = [&](int seed) {
    for (int call = 0; call < 300; ++call) {
      const int64_t count = 1 + (call * 7 + seed) % 23, threads = 1 + (call + seed) % 4;
      std::vector<int64_t> done(count, 0);
      rflo_workers::for_each(count, threads, [&](int64_t k) { done[k] += k + 1; });
      for (int64_t k = 0; k < count; ++k) wrong += done[k] != k + 1;
    }
  };
  std::vector<std::thread> callers;
  for (int seed = 0; seed < 3; ++seed) callers.emplace_back(caller, seed);
  for (auto& t : callers) t.join();
  std::printf("wrong: %d\n", wrong.load());
  return wrong.load() != 0;
}
