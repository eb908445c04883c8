/*
 * spectator.hpp: a thin, header-only C++11 layer over spectator.h.
 *
 * Copyright 2026 the spectator-c authors. Licensed under the Apache License,
 * Version 2.0; see LICENSE.
 *
 * What it adds to the C API, and nothing more:
 *   - typed meter handles (spectator::Counter, Timer, ...): a pointer each,
 *     copied freely, whose methods are the C recording functions inline;
 *   - tags as an initializer list: spectator::counter("requests", {"status",
 *     "200"});
 *   - timers that take std::chrono durations, a Stopwatch, and a ScopedTimer
 *     that records the time until the end of its scope;
 *   - RAII owners for registries and snapshots.
 *
 * Everything here is noexcept and works with exceptions disabled. Recording
 * (any method of a meter handle) allocates nothing, takes no lock and never
 * logs, as in C. Lookups copy the tag pointers into a stack array (a heap one
 * past 64 strings; if that allocation fails, the lookup gives a no-op meter).
 * Thread-safety, ownership and bad input are as documented in spectator.h:
 * meter handles stay valid as long as their registry (until exit for the
 * global one), and a bad name or tag gives a no-op meter and a log line.
 */
#ifndef SPECTATOR_HPP
#define SPECTATOR_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>

#include "spectator.h"

namespace spectator {

/* Alternating key, value strings: {"status", "200", "method", "GET"}. The
 * strings are copied by the lookup; {} means no tags. */
using Tags = std::initializer_list<const char *>;

namespace detail {

/* The NULL-terminated array the C API takes, built from an initializer list
 * for the duration of one lookup. */
class TagArray {
public:
  explicit TagArray(Tags tags) noexcept {
    if (tags.size() == 0) return; /* no tags: NULL */
    const char **dst = small_;
    if (tags.size() + 1 > kSmall) {
      heap_ = new (std::nothrow) const char *[tags.size() + 1];
      dst = heap_;
      if (!dst) {
        failed_ = true;
        return;
      }
    }
    std::size_t i = 0;
    for (const char *t : tags) dst[i++] = t;
    dst[i] = nullptr;
    array_ = dst;
  }
  ~TagArray() { delete[] heap_; }
  TagArray(const TagArray &) = delete;
  TagArray &operator=(const TagArray &) = delete;

  const char *const *get() const noexcept { return array_; }
  /* True when the heap array could not be allocated. */
  bool failed() const noexcept { return failed_; }

private:
  static const std::size_t kSmall = 64;
  const char *small_[kSmall];
  const char **heap_ = nullptr;
  const char *const *array_ = nullptr;
  bool failed_ = false;
};

template <class Rep, class Period>
inline std::int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

} // namespace detail

/* ------------------------------------------------------------------------ */
/* Meter handles: one pointer each; a default-constructed handle is a no-op. */
/* ------------------------------------------------------------------------ */

class Counter {
public:
  explicit Counter(spectator_counter_t *c = nullptr) noexcept : c_(c) {}
  void increment() const noexcept { spectator_counter_increment(c_); }
  void add(double amount) const noexcept { spectator_counter_add(c_, amount); }
  /* The count of the current interval. */
  double count() const noexcept { return spectator_counter_count(c_); }
  spectator_counter_t *get() const noexcept { return c_; }

private:
  spectator_counter_t *c_;
};

class Timer {
public:
  explicit Timer(spectator_timer_t *t = nullptr) noexcept : t_(t) {}
  void record_seconds(double seconds) const noexcept { spectator_timer_record(t_, seconds); }
  void record_ns(std::int64_t nanos) const noexcept { spectator_timer_record_ns(t_, nanos); }
  template <class Rep, class Period>
  void record(std::chrono::duration<Rep, Period> d) const noexcept {
    spectator_timer_record_ns(t_, detail::to_ns(d));
  }
  std::uint64_t count() const noexcept { return spectator_timer_count(t_); }
  double total_seconds() const noexcept { return spectator_timer_total_seconds(t_); }
  spectator_timer_t *get() const noexcept { return t_; }

private:
  spectator_timer_t *t_;
};

class DistSummary {
public:
  explicit DistSummary(spectator_dist_summary_t *d = nullptr) noexcept : d_(d) {}
  void record(double amount) const noexcept { spectator_dist_summary_record(d_, amount); }
  std::uint64_t count() const noexcept { return spectator_dist_summary_count(d_); }
  double total() const noexcept { return spectator_dist_summary_total(d_); }
  spectator_dist_summary_t *get() const noexcept { return d_; }

private:
  spectator_dist_summary_t *d_;
};

class Gauge {
public:
  explicit Gauge(spectator_gauge_t *g = nullptr) noexcept : g_(g) {}
  void set(double value) const noexcept { spectator_gauge_set(g_, value); }
  double value() const noexcept { return spectator_gauge_get(g_); }
  spectator_gauge_t *get() const noexcept { return g_; }

private:
  spectator_gauge_t *g_;
};

class MaxGauge {
public:
  explicit MaxGauge(spectator_max_gauge_t *g = nullptr) noexcept : g_(g) {}
  void set(double value) const noexcept { spectator_max_gauge_set(g_, value); }
  double value() const noexcept { return spectator_max_gauge_get(g_); }
  spectator_max_gauge_t *get() const noexcept { return g_; }

private:
  spectator_max_gauge_t *g_;
};

class MonotonicCounter {
public:
  explicit MonotonicCounter(spectator_monotonic_counter_t *m = nullptr) noexcept : m_(m) {}
  void set(double value) const noexcept { spectator_monotonic_counter_set(m_, value); }
  double value() const noexcept { return spectator_monotonic_counter_get(m_); }
  spectator_monotonic_counter_t *get() const noexcept { return m_; }

private:
  spectator_monotonic_counter_t *m_;
};

class PercentileTimer {
public:
  explicit PercentileTimer(spectator_percentile_timer_t *t = nullptr) noexcept : t_(t) {}
  void record_seconds(double seconds) const noexcept {
    spectator_percentile_timer_record(t_, seconds);
  }
  void record_ns(std::int64_t nanos) const noexcept {
    spectator_percentile_timer_record_ns(t_, nanos);
  }
  template <class Rep, class Period>
  void record(std::chrono::duration<Rep, Period> d) const noexcept {
    spectator_percentile_timer_record_ns(t_, detail::to_ns(d));
  }
  std::uint64_t count() const noexcept { return spectator_percentile_timer_count(t_); }
  double total_seconds() const noexcept { return spectator_percentile_timer_total_seconds(t_); }
  /* Estimate of the pct-th percentile (0..100) in seconds. */
  double percentile(double pct) const noexcept {
    return spectator_percentile_timer_percentile(t_, pct);
  }
  spectator_percentile_timer_t *get() const noexcept { return t_; }

private:
  spectator_percentile_timer_t *t_;
};

class PercentileDistSummary {
public:
  explicit PercentileDistSummary(spectator_percentile_dist_summary_t *d = nullptr) noexcept
      : d_(d) {}
  void record(double amount) const noexcept {
    spectator_percentile_dist_summary_record(d_, amount);
  }
  std::uint64_t count() const noexcept { return spectator_percentile_dist_summary_count(d_); }
  double total() const noexcept { return spectator_percentile_dist_summary_total(d_); }
  double percentile(double pct) const noexcept {
    return spectator_percentile_dist_summary_percentile(d_, pct);
  }
  spectator_percentile_dist_summary_t *get() const noexcept { return d_; }

private:
  spectator_percentile_dist_summary_t *d_;
};

/* ------------------------------------------------------------------------ */
/* Timing                                                                    */
/* ------------------------------------------------------------------------ */

/* A start time on CLOCK_MONOTONIC (a value: no allocation). Starting and
 * recording read the clock. */
class Stopwatch {
public:
  Stopwatch() noexcept : sw_(spectator_stopwatch_start()) {}
  void restart() noexcept { sw_ = spectator_stopwatch_start(); }
  std::chrono::nanoseconds elapsed() const noexcept {
    return std::chrono::nanoseconds(spectator_stopwatch_elapsed_ns(sw_));
  }
  /* Record the time since start on t; returns it. */
  std::chrono::nanoseconds record(Timer t) const noexcept {
    return std::chrono::nanoseconds(spectator_stopwatch_record(sw_, t.get()));
  }
  std::chrono::nanoseconds record(PercentileTimer t) const noexcept {
    return std::chrono::nanoseconds(spectator_stopwatch_record_percentile(sw_, t.get()));
  }

private:
  spectator_stopwatch_t sw_;
};

/* Records the time from its construction to the end of its scope (or to
 * stop()) on a timer or a percentile timer:
 *
 *   { spectator::ScopedTimer t(latency); handle(request); }
 */
class ScopedTimer {
public:
  explicit ScopedTimer(Timer t) noexcept : timer_(t.get()) {}
  explicit ScopedTimer(PercentileTimer t) noexcept : ptimer_(t.get()) {}
  ~ScopedTimer() { stop(); }
  ScopedTimer(const ScopedTimer &) = delete;
  ScopedTimer &operator=(const ScopedTimer &) = delete;

  /* Record now instead of at the end of the scope; later calls and the
   * destructor record nothing. Returns the time recorded (0 when already
   * stopped or cancelled). */
  std::chrono::nanoseconds stop() noexcept {
    std::int64_t ns = 0;
    if (timer_) ns = spectator_stopwatch_record(sw_, timer_);
    if (ptimer_) ns = spectator_stopwatch_record_percentile(sw_, ptimer_);
    timer_ = nullptr;
    ptimer_ = nullptr;
    return std::chrono::nanoseconds(ns);
  }
  /* Record nothing (an early return that must not count, for example). */
  void cancel() noexcept {
    timer_ = nullptr;
    ptimer_ = nullptr;
  }

private:
  spectator_stopwatch_t sw_ = spectator_stopwatch_start();
  spectator_timer_t *timer_ = nullptr;
  spectator_percentile_timer_t *ptimer_ = nullptr;
};

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */
/* ------------------------------------------------------------------------ */

/* Owns a spectator_measurements_t (movable, not copyable). */
class Measurements {
public:
  explicit Measurements(spectator_measurements_t *ms = nullptr) noexcept : ms_(ms) {}
  ~Measurements() { spectator_measurements_free(ms_); }
  Measurements(Measurements &&o) noexcept : ms_(o.ms_) { o.ms_ = nullptr; }
  Measurements &operator=(Measurements &&o) noexcept {
    if (this != &o) {
      spectator_measurements_free(ms_);
      ms_ = o.ms_;
      o.ms_ = nullptr;
    }
    return *this;
  }
  Measurements(const Measurements &) = delete;
  Measurements &operator=(const Measurements &) = delete;

  /* False when the snapshot could not be taken (out of memory). */
  explicit operator bool() const noexcept { return ms_ != nullptr; }
  std::size_t size() const noexcept { return spectator_measurements_count(ms_); }
  /* The i-th measurement (sorted by name, then tags); nullptr out of range. */
  const spectator_measurement_t *operator[](std::size_t i) const noexcept {
    return spectator_measurements_get(ms_, i);
  }
  /* The measurement with this name and exactly these tags, statistic
   * included; nullptr when there is none. */
  const spectator_measurement_t *find(const char *name, Tags tags) const noexcept {
    detail::TagArray t(tags);
    return t.failed() ? nullptr : spectator_measurements_find(ms_, name, t.get());
  }
  spectator_measurements_t *get() const noexcept { return ms_; }

private:
  spectator_measurements_t *ms_;
};

/* ------------------------------------------------------------------------ */
/* Registries                                                                */
/* ------------------------------------------------------------------------ */

/* The defaults of spectator_config_init(), or those plus the environment. */
inline spectator_config_t default_config() noexcept {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  return cfg;
}
inline spectator_config_t config_from_env() noexcept {
  spectator_config_t cfg;
  spectator_config_from_env(&cfg);
  return cfg;
}

/* A registry: owning when created from a config (freed, with a final flush
 * when it was publishing, by the destructor), not owning for global(). Movable,
 * not copyable. A registry that could not be created (invalid config, logged)
 * tests false and hands out no-op meters. */
class Registry {
public:
  explicit Registry(const spectator_config_t &cfg) noexcept
      : reg_(spectator_registry_new(&cfg)), owned_(true) {}
  /* The global registry (configured from the environment), not owned. */
  static Registry global() noexcept { return Registry(spectator_global_registry(), false); }
  ~Registry() {
    if (owned_) spectator_registry_free(reg_);
  }
  Registry(Registry &&o) noexcept : reg_(o.reg_), owned_(o.owned_) {
    o.reg_ = nullptr;
    o.owned_ = false;
  }
  Registry &operator=(Registry &&o) noexcept {
    if (this != &o) {
      if (owned_) spectator_registry_free(reg_);
      reg_ = o.reg_;
      owned_ = o.owned_;
      o.reg_ = nullptr;
      o.owned_ = false;
    }
    return *this;
  }
  Registry(const Registry &) = delete;
  Registry &operator=(const Registry &) = delete;

  explicit operator bool() const noexcept { return reg_ != nullptr; }
  spectator_registry_t *get() const noexcept { return reg_; }

  /* 0 or a negative SPECTATOR_E* code, as spectator_registry_start(). */
  int start() const noexcept { return spectator_registry_start(reg_); }
  void stop() const noexcept { spectator_registry_stop(reg_); }
  std::size_t size() const noexcept { return spectator_registry_size(reg_); }
  /* Each meter reports and resets, as a publish would (see spectator.h). */
  Measurements snapshot() const noexcept { return Measurements(spectator_registry_snapshot(reg_)); }

  Counter counter(const char *name, Tags tags = {}) const noexcept {
    detail::TagArray t(tags);
    return Counter(spectator_registry_counter(live(t), name, t.get()));
  }
  Timer timer(const char *name, Tags tags = {}) const noexcept {
    detail::TagArray t(tags);
    return Timer(spectator_registry_timer(live(t), name, t.get()));
  }
  DistSummary dist_summary(const char *name, Tags tags = {}) const noexcept {
    detail::TagArray t(tags);
    return DistSummary(spectator_registry_dist_summary(live(t), name, t.get()));
  }
  Gauge gauge(const char *name, Tags tags = {}) const noexcept {
    detail::TagArray t(tags);
    return Gauge(spectator_registry_gauge(live(t), name, t.get()));
  }
  Gauge gauge_with_ttl(const char *name, Tags tags, double ttl_s) const noexcept {
    detail::TagArray t(tags);
    return Gauge(spectator_registry_gauge_with_ttl(live(t), name, t.get(), ttl_s));
  }
  MaxGauge max_gauge(const char *name, Tags tags = {}) const noexcept {
    detail::TagArray t(tags);
    return MaxGauge(spectator_registry_max_gauge(live(t), name, t.get()));
  }
  MonotonicCounter monotonic_counter(const char *name, Tags tags = {}) const noexcept {
    detail::TagArray t(tags);
    return MonotonicCounter(spectator_registry_monotonic_counter(live(t), name, t.get()));
  }
  PercentileTimer percentile_timer(const char *name, Tags tags, double min_seconds,
                                   double max_seconds) const noexcept {
    detail::TagArray t(tags);
    return PercentileTimer(
        spectator_registry_percentile_timer(live(t), name, t.get(), min_seconds, max_seconds));
  }
  PercentileDistSummary percentile_dist_summary(const char *name, Tags tags, double min,
                                                double max) const noexcept {
    detail::TagArray t(tags);
    return PercentileDistSummary(
        spectator_registry_percentile_dist_summary(live(t), name, t.get(), min, max));
  }

private:
  Registry(spectator_registry_t *reg, bool owned) noexcept : reg_(reg), owned_(owned) {}
  /* The registry to look up in: none (a no-op meter) when the tags could not
   * be copied. */
  spectator_registry_t *live(const detail::TagArray &t) const noexcept {
    return t.failed() ? nullptr : reg_;
  }

  spectator_registry_t *reg_;
  bool owned_;
};

/* Meters of the global registry, as spectator_counter() and friends: the
 * first lookup starts publishing unless SPECTATOR_DISABLE_AUTO_START is set. */
inline Counter counter(const char *name, Tags tags = {}) noexcept {
  return Registry::global().counter(name, tags);
}
inline Timer timer(const char *name, Tags tags = {}) noexcept {
  return Registry::global().timer(name, tags);
}
inline DistSummary dist_summary(const char *name, Tags tags = {}) noexcept {
  return Registry::global().dist_summary(name, tags);
}
inline Gauge gauge(const char *name, Tags tags = {}) noexcept {
  return Registry::global().gauge(name, tags);
}
inline MaxGauge max_gauge(const char *name, Tags tags = {}) noexcept {
  return Registry::global().max_gauge(name, tags);
}
inline MonotonicCounter monotonic_counter(const char *name, Tags tags = {}) noexcept {
  return Registry::global().monotonic_counter(name, tags);
}
inline PercentileTimer percentile_timer(const char *name, Tags tags, double min_seconds,
                                        double max_seconds) noexcept {
  return Registry::global().percentile_timer(name, tags, min_seconds, max_seconds);
}
inline PercentileDistSummary percentile_dist_summary(const char *name, Tags tags, double min,
                                                     double max) noexcept {
  return Registry::global().percentile_dist_summary(name, tags, min, max);
}

/* The global publisher, as spectator_start() / spectator_stop(). */
inline int start() noexcept { return spectator_start(); }
inline void stop() noexcept { spectator_stop(); }

} // namespace spectator

#endif /* SPECTATOR_HPP */
