// Compiled (not run) by header_check.sh under each C++ standard with strict
// warnings: every macro of spectator.h and every template of spectator.hpp is
// used at least once.
#include <spectator.hpp>

#include <chrono>

int header_check();
int header_check() {
  spectator_counter_t *c = spectator_counter("hc.c", SPECTATOR_TAGS("k", "v"));
  spectator_counter_increment(c);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  spectator_config_from_env(&cfg);
  spectator_registry_free(spectator_registry_new(&cfg));
  spectator_registry_free(spectator_registry_new(nullptr));
  static_assert(SPECTATOR_VERSION_HEX >= 0x000100, "version");
  int err = SPECTATOR_EINVAL;

  spectator::Registry reg(spectator::default_config());
  spectator::Timer t = reg.timer("hc.t", {"a", "b"});
  t.record(std::chrono::milliseconds(3));
  t.record(std::chrono::duration<double>(0.5));
  spectator::PercentileTimer pt = spectator::percentile_timer("hc.pt", {}, 0, 1);
  pt.record(std::chrono::microseconds(7));
  { spectator::ScopedTimer s(t); }
  { spectator::ScopedTimer s(pt); }
  spectator::Stopwatch sw;
  sw.record(t);
  spectator::Measurements ms = reg.snapshot();
  return err + static_cast<int>(ms.size()) + (ms.find("hc.t", {"statistic", "count"}) ? 1 : 0);
}
