/*
 * spectator.h and spectator.hpp from C++: built with -std=c++11 -pedantic
 * -Werror (tests/CMakeLists.txt). Records through the C API with
 * SPECTATOR_TAGS and through the C++ wrappers, checks exact values in
 * snapshots, and publishes to the local test aggregator over loopback.
 */
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <setjmp.h>

extern "C" {
#include <cmocka.h>
}

#include "aggregator.h"
#include "spectator.hpp"

namespace {

agg_t *agg;

int agg_setup(void **) {
  agg = agg_start(0);
  return agg ? 0 : -1;
}

int agg_teardown(void **) {
  agg_stop(agg);
  return 0;
}

/* A registry that does not publish, without the environment's tags. */
spectator::Registry local_registry() {
  spectator_config_t cfg = spectator::default_config();
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  return spectator::Registry(cfg);
}

double value_of(const spectator::Measurements &ms, const char *name, spectator::Tags tags) {
  const spectator_measurement_t *m = ms.find(name, tags);
  if (!m) fail_msg("no measurement %s", name);
  return m->value;
}

void spectator_tags_macro_compiles_and_lives_through_the_call(void **) {
  spectator::Registry reg = local_registry();
  assert_true(static_cast<bool>(reg));
  spectator_counter_t *c =
      spectator_registry_counter(reg.get(), "cpp.macro", SPECTATOR_TAGS("k", "v", "a", "b"));
  spectator_counter_add(c, 2.5);
  /* The same id again: the same meter. */
  assert_ptr_equal(
      c, spectator_registry_counter(reg.get(), "cpp.macro", SPECTATOR_TAGS("a", "b", "k", "v")));
  spectator_measurements_t *ms = spectator_registry_snapshot(reg.get());
  const spectator_measurement_t *m = spectator_measurements_find(
      ms, "cpp.macro", SPECTATOR_TAGS("a", "b", "k", "v", "statistic", "count"));
  assert_non_null(m);
  assert_true(m->value == 2.5);
  spectator_measurements_free(ms);
}

void wrappers_record_exact_values(void **) {
  spectator::Registry reg = local_registry();
  spectator::Counter c = reg.counter("cpp.requests", {"status", "200"});
  c.increment();
  c.add(1.5);
  c.add(-3); /* ignored, as in C */
  assert_true(c.count() == 2.5);
  assert_ptr_equal(c.get(), reg.counter("cpp.requests", {"status", "200"}).get());

  spectator::Timer t = reg.timer("cpp.latency");
  t.record(std::chrono::milliseconds(250));
  t.record_seconds(0.5);
  t.record_ns(250000000);
  assert_int_equal(t.count(), 3);

  spectator::DistSummary d = reg.dist_summary("cpp.size", {"kind", "body"});
  d.record(100);
  d.record(300);
  spectator::Gauge g = reg.gauge("cpp.queue");
  g.set(42);
  assert_true(g.value() == 42);
  spectator::MaxGauge mg = reg.max_gauge("cpp.peak");
  mg.set(3);
  mg.set(9);
  mg.set(4);
  spectator::PercentileTimer pt = reg.percentile_timer("cpp.ptime", {}, 0.001, 10);
  pt.record(std::chrono::seconds(1));
  pt.record(std::chrono::microseconds(2000000));
  assert_int_equal(pt.count(), 2);
  assert_true(pt.total_seconds() == 3.0);
  spectator::PercentileDistSummary pd = reg.percentile_dist_summary("cpp.psize", {}, 0, 1000);
  pd.record(10);
  assert_true(pd.total() == 10);

  spectator::Measurements ms = reg.snapshot();
  assert_true(static_cast<bool>(ms));
  assert_true(value_of(ms, "cpp.requests", {"statistic", "count", "status", "200"}) == 2.5);
  assert_true(value_of(ms, "cpp.latency", {"statistic", "count"}) == 3);
  assert_true(value_of(ms, "cpp.latency", {"statistic", "totalTime"}) == 1.0);
  assert_true(value_of(ms, "cpp.latency", {"statistic", "totalOfSquares"}) == 0.375);
  assert_true(value_of(ms, "cpp.latency", {"statistic", "max"}) == 0.5);
  assert_true(value_of(ms, "cpp.size", {"kind", "body", "statistic", "totalAmount"}) == 400);
  assert_true(value_of(ms, "cpp.size", {"kind", "body", "statistic", "count"}) == 2);
  assert_true(value_of(ms, "cpp.queue", {"statistic", "gauge"}) == 42);
  assert_true(value_of(ms, "cpp.peak", {"statistic", "max"}) == 9);
  assert_true(value_of(ms, "cpp.ptime", {"statistic", "count"}) == 2);
  assert_true(value_of(ms, "cpp.psize", {"statistic", "totalAmount"}) == 10);
  /* The snapshot reset the interval. */
  assert_true(c.count() == 0);

  /* Moving the snapshot hands over ownership (no double free under ASan). */
  spectator::Measurements moved(std::move(ms));
  assert_false(static_cast<bool>(ms));
  assert_true(moved.size() > 0);
  assert_non_null(moved[0]);
  assert_null(moved[moved.size()]);
}

void scoped_timer_records_once_what_stop_returns(void **) {
  spectator::Registry reg = local_registry();
  spectator::Timer t = reg.timer("cpp.scoped");
  spectator::Stopwatch outer;
  std::chrono::nanoseconds recorded(0);
  {
    spectator::ScopedTimer st(t);
    volatile std::uint64_t spin = 0;
    for (int i = 0; i < 100000; i++) spin = spin + static_cast<std::uint64_t>(i);
    recorded = st.stop();
    assert_true(st.stop().count() == 0); /* only once */
  }                                      /* the destructor records nothing after stop() */
  std::chrono::nanoseconds bound = outer.elapsed();
  assert_int_equal(t.count(), 1);
  assert_true(recorded.count() > 0);
  assert_true(recorded <= bound);
  assert_true(t.total_seconds() == static_cast<double>(recorded.count()) / 1e9);

  { spectator::ScopedTimer st(t); } /* records at the end of the scope */
  assert_int_equal(t.count(), 2);
  {
    spectator::ScopedTimer st(t);
    st.cancel();
  }
  assert_int_equal(t.count(), 2);

  spectator::PercentileTimer pt = reg.percentile_timer("cpp.scoped_pct", {}, 0, 60);
  { spectator::ScopedTimer st(pt); }
  assert_int_equal(pt.count(), 1);
  spectator::Stopwatch sw;
  std::chrono::nanoseconds r = sw.record(t);
  assert_int_equal(t.count(), 3);
  assert_true(r.count() >= 0);
  sw.record(pt);
  assert_int_equal(pt.count(), 2);
}

void an_invalid_config_gives_a_false_registry_and_no_op_meters(void **) {
  spectator_config_t cfg = spectator::default_config();
  cfg.frequency_s = -1;
  spectator::Registry reg(cfg);
  assert_false(static_cast<bool>(reg));
  spectator::Counter c = reg.counter("cpp.nothing");
  c.increment(); /* a no-op meter */
  assert_true(c.count() == 0);
  spectator::Counter none;
  none.add(5); /* default-constructed: a no-op */
  assert_true(none.count() == 0);
}

void many_tags_use_the_heap_array(void **) {
  spectator::Registry reg = local_registry();
  /* 34 pairs: past the 64-entry stack array. */
  spectator::Counter c = reg.counter(
      "cpp.many",
      {"k00", "v", "k01", "v", "k02", "v", "k03", "v", "k04", "v", "k05", "v", "k06", "v",
       "k07", "v", "k08", "v", "k09", "v", "k10", "v", "k11", "v", "k12", "v", "k13", "v",
       "k14", "v", "k15", "v", "k16", "v", "k17", "v", "k18", "v", "k19", "v", "k20", "v",
       "k21", "v", "k22", "v", "k23", "v", "k24", "v", "k25", "v", "k26", "v", "k27", "v",
       "k28", "v", "k29", "v", "k30", "v", "k31", "v", "k32", "v", "k33", "v"});
  c.add(3);
  assert_true(c.count() == 3);
  spectator_id_t *id = spectator_id_new("x", nullptr);
  assert_non_null(id);
  spectator_id_free(id);
}

void a_registry_publishes_to_the_aggregator(void **) {
  agg_reset(agg);
  spectator_config_t cfg = spectator::default_config();
  cfg.uri = agg_url(agg);
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.auto_start = 0;
  static const char *const common[] = {"nf.app", "cpptest", nullptr};
  cfg.common_tags = common;
  spectator::Registry reg(cfg);
  assert_true(static_cast<bool>(reg));
  assert_int_equal(reg.start(), 0);
  spectator::Counter c = reg.counter("cpp.published", {"status", "200"});
  for (int i = 0; i < 7; i++) c.increment();
  c.add(0.5);
  spectator::Timer t = reg.timer("cpp.published_latency");
  t.record(std::chrono::milliseconds(1500));
  reg.stop(); /* the final flush publishes what is pending */
  assert_int_equal(
      agg_wait_value(agg, "cpp.published",
                     SPECTATOR_TAGS("nf.app", "cpptest", "statistic", "count", "status", "200"),
                     7.5, 10),
      0);
  double v = NAN;
  assert_int_equal(agg_get(agg, "cpp.published_latency",
                           SPECTATOR_TAGS("nf.app", "cpptest", "statistic", "totalTime"), &v),
                   0);
  assert_true(v == 1.5);
}

} // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spectator_tags_macro_compiles_and_lives_through_the_call),
      cmocka_unit_test(wrappers_record_exact_values),
      cmocka_unit_test(scoped_timer_records_once_what_stop_returns),
      cmocka_unit_test(an_invalid_config_gives_a_false_registry_and_no_op_meters),
      cmocka_unit_test(many_tags_use_the_heap_array),
      cmocka_unit_test(a_registry_publishes_to_the_aggregator),
  };
  return cmocka_run_group_tests(tests, agg_setup, agg_teardown);
}
