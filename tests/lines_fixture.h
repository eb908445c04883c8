/* Shared fixture of the tests of spectatord's line outputs (test_outputs,
 * test_outputs_fork): a stand-in for spectatord (tools/line_receiver) of
 * their own for each test, on a new UDP port and unix socket path, and
 * registries that write to it. Include after <cmocka.h> and test_util.h. */
#ifndef SPECTATOR_LINES_FIXTURE_H
#define SPECTATOR_LINES_FIXTURE_H

#include <math.h>
#include <time.h>

#include "line_receiver.h"
#include "spectator.h"

static lr_t *lr;
static char sock_path[108];
static char udp_loc[64];
static char unix_loc[160];

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A receiver of its own for each test, on a new port and path: whatever an
 * earlier test's registries still send goes nowhere. */
static inline int reset(void **state) {
  (void)state;
  static int n;
  lr_stop(lr);
  snprintf(sock_path, sizeof(sock_path), "/tmp/spectator-test-lines-%d-%d.sock", (int)getpid(),
           n++);
  lr = lr_start(0, sock_path);
  if (!lr) return -1;
  snprintf(udp_loc, sizeof(udp_loc), "udp://127.0.0.1:%d", lr_udp_port(lr));
  snprintf(unix_loc, sizeof(unix_loc), "unix://%s", sock_path);
  tu_log_release();
  return 0;
}

static inline int teardown(void **state) {
  (void)state;
  lr_stop(lr);
  lr = NULL;
  return 0;
}

/* A registry writing to loc, started; an interval long enough that only what
 * the test asks for (a stop) publishes, unless freq says otherwise. */
static inline spectator_registry_t *line_reg(const char *loc, double freq) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = loc;
  cfg.frequency_s = freq;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  return r;
}

static inline void assert_no_errors(void) {
  lr_stats_t st;
  lr_stats(lr, &st);
  char buf[600];
  for (size_t i = 0; lr_error(lr, i, buf, sizeof(buf)); i++) print_error("receiver: %s\n", buf);
  assert_int_equal(st.errors, 0);
}

static inline lr_meter_t get(char type, const char *id) {
  lr_meter_t m;
  memset(&m, 0, sizeof(m));
  if (!lr_get(lr, type, id, &m)) fail_msg("the receiver has no %c meter %s", type, id);
  return m;
}

/* The value of a measurement of a snapshot; NaN when absent. */
static inline double snap_value(spectator_registry_t *r, const char *name,
                                const char *const *tags) {
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  double v = NAN;
  tu_find(ms, name, tags, &v);
  spectator_measurements_free(ms);
  return v;
}

#endif
