/*
 * cpp_server: spectator-c from C++ with spectator.hpp. A pretend server
 * handles requests for a few seconds, timing each with a ScopedTimer and
 * counting them by status, then prints what the next publish would send.
 *
 * Build: part of the project build when a C++ compiler is found
 *        (examples/cpp_server), or on its own against an installed library:
 *        c++ -std=c++11 cpp_server.cpp $(pkg-config --cflags --libs spectator)
 * Run:   SPECTATOR_URI=http://localhost:7101/api/v4/update ./cpp_server [seconds]
 *        (without SPECTATOR_URI it records and prints, but publishes nothing)
 */
#include <spectator.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

/* Pretend to work: 5 to 25 ms, and one request in ten fails. */
int handle(unsigned n) {
  std::this_thread::sleep_for(std::chrono::milliseconds(5 + (n * 7) % 21));
  return n % 10 == 9 ? 503 : 200;
}

} // namespace

int main(int argc, char **argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;

  /* Look meters up once and keep the handles: recording on a handle is a few
   * atomic instructions, as in C. Tags are an initializer list. */
  spectator::Counter ok = spectator::counter("server.requests", {"status", "200"});
  spectator::Counter failed = spectator::counter("server.requests", {"status", "503"});
  spectator::Timer latency = spectator::timer("server.latency", {"endpoint", "/home"});
  spectator::PercentileTimer latency_pct =
      spectator::percentile_timer("server.latency.pct", {"endpoint", "/home"}, 0.001, 1.0);
  spectator::Gauge in_flight = spectator::gauge("server.inFlight");

  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  unsigned n = 0;
  while (std::chrono::steady_clock::now() < end) {
    in_flight.set(1);
    spectator::Stopwatch sw;
    int status;
    {
      spectator::ScopedTimer timed(latency); /* records when the scope ends */
      status = handle(n++);
    }
    sw.record(latency_pct);
    (status == 200 ? ok : failed).increment();
    in_flight.set(0);
  }
  std::printf("handled %u requests (%.0f ok, %.0f failed) in %.1f s\n", n, ok.count(),
              failed.count(), seconds);

  /* What the next publish would send (a snapshot resets the interval, so a
   * real program would not take one while publishing). */
  if (spectator::start() == SPECTATOR_ENOURI) {
    spectator::Measurements ms = spectator::Registry::global().snapshot();
    for (std::size_t i = 0; i < ms.size(); i++) {
      char id[256];
      spectator_id_format(ms[i]->id, id, sizeof id);
      std::printf("  %-60s %s %g\n", id, ms[i]->op == SPECTATOR_OP_MAX ? "max" : "add",
                  ms[i]->value);
    }
  }
  return 0; /* a normal exit stops the publisher and flushes what is pending */
}
