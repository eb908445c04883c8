/*
 * The outputs of spectatord's line protocol, end to end: the real library
 * sends over real UDP and unix datagram sockets to the local stand-in for
 * spectatord (tools/line_receiver), which parses every line strictly and
 * keeps exact aggregates; files, stdout, memory and none; fork, the exit
 * flush of a process that returns from main, and receivers that are absent,
 * missing or not reading.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aggregator.h"
#include "line_receiver.h"
#include "spectator.h"
#include "test_util.h"

extern char **environ;

#include "lines_fixture.h"

/* ------------------------------------------------------------------------ */
/* Every meter type, exactly                                                 */
/* ------------------------------------------------------------------------ */

static void send_every_type(const char *loc) {
  spectator_registry_t *r = line_reg(loc, 0.05);
  spectator_counter_t *sync = spectator_registry_counter(r, "sync", NULL);
  spectator_monotonic_counter_t *mc = spectator_registry_monotonic_counter(r, "mc", NULL);
  spectator_monotonic_counter_u64_t *u = spectator_registry_monotonic_counter_u64(r, "u", NULL);
  spectator_monotonic_counter_set(mc, 1000);
  spectator_monotonic_counter_u64_set(u, 10);
  spectator_counter_increment(sync);
  /* A publish has taken the monotonic counters' first values. */
  assert_true(lr_wait_lines(lr, 1, 10000));
  spectator_monotonic_counter_set(mc, 1250.5);
  spectator_monotonic_counter_u64_set(u, (1ULL << 60) + 10);
  spectator_age_gauge_set(spectator_registry_age_gauge(r, "ag", NULL), 1700000000.5);
  spectator_long_task_timer_t *ltt = spectator_registry_long_task_timer(r, "job", NULL);
  assert_true(spectator_long_task_timer_start(ltt) >= 0);

  spectator_counter_t *c = spectator_registry_counter(r, "c", SPECTATOR_TAGS("k", "v"));
  for (int i = 1; i <= 100; i++) spectator_counter_add(c, i);
  spectator_gauge_set(spectator_registry_gauge(r, "g", NULL), 1);
  spectator_gauge_set(spectator_registry_gauge(r, "g", NULL), 42);
  spectator_gauge_set(spectator_registry_gauge_with_ttl(r, "gt", NULL, 30), 5);
  spectator_max_gauge_t *m = spectator_registry_max_gauge(r, "m", NULL);
  spectator_max_gauge_set(m, 3);
  spectator_max_gauge_set(m, 17.25);
  spectator_max_gauge_set(m, 5);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  int64_t total = 0, max = 0;
  for (int64_t i = 1; i <= 1000; i++) {
    int64_t ns = i * 1000003 + 7;
    spectator_timer_record_ns(t, ns);
    total += ns;
    max = ns > max ? ns : max;
  }
  spectator_timer_record(t, 0.125);
  spectator_percentile_timer_t *pt =
      spectator_registry_percentile_timer(r, "pt", SPECTATOR_TAGS("a", "b"), 0.001, 10);
  for (int i = 1; i <= 10; i++) spectator_percentile_timer_record(pt, 0.001 * i);
  spectator_dist_summary_t *d = spectator_registry_dist_summary(r, "d", NULL);
  for (int i = 1; i <= 500; i++) spectator_dist_summary_record(d, i);
  spectator_dist_summary_record(d, 0.5);
  spectator_percentile_dist_summary_t *pd =
      spectator_registry_percentile_dist_summary(r, "pd", NULL, 0, 1000);
  for (int i = 0; i < 10; i++) spectator_percentile_dist_summary_record(pd, 10.9);
  spectator_registry_stop(r);
  /* 1 sync + 100 lines at most for c (one per interval) ... wait for the
   * samples, which are one line each. */
  assert_true(lr_wait_lines(lr, 1001 + 10 + 501 + 10, 10000));
  spectator_registry_free(r);

  lr_meter_t x = get('c', "c,k=v");
  assert_true(x.sum == 5050);
  x = get('g', "g");
  assert_true(x.last == 42);
  assert_int_equal(x.ttl, 0);
  x = get('g', "gt");
  assert_true(x.last == 5);
  assert_int_equal(x.ttl, 30);
  assert_true(get('m', "m").max == 17.25);
  /* the monotonic counters' last values, each sent when it was set
   * (2^60 + 10 is exact only as an integer) */
  x = get('C', "mc");
  assert_true(x.last == 1250.5);
  assert_int_equal(x.count, 2);
  x = get('U', "u");
  assert_true(x.last_u == (1ULL << 60) + 10);
  assert_int_equal(x.count, 2);
  /* the age gauge's last set; a long task timer as two gauges */
  assert_true(get('A', "ag").last == 1700000000.5);
  assert_true(get('g', "job,statistic=activeTasks").last == 1);
  assert_true(get('g', "job,statistic=duration").last >= 0);
  x = get('t', "t");
  assert_int_equal(x.count, 1001);
  assert_int_equal(x.total_ns, total + 125000000);
  assert_int_equal(x.max_ns, max);
  x = get('T', "pt,a=b");
  assert_int_equal(x.count, 10);
  assert_int_equal(x.total_ns, 55000000);
  x = get('d', "d");
  assert_int_equal(x.count, 501);
  assert_true(x.sum == 125250.5);
  assert_true(x.max == 500);
  x = get('D', "pd");
  assert_int_equal(x.count, 10);
  assert_int_equal(x.total_int, 100); /* spectatord keeps whole amounts */
  assert_no_errors();
}

static void every_meter_type_arrives_exactly_over_udp(void **state) {
  (void)state;
  send_every_type(udp_loc);
  lr_stats_t st;
  lr_stats(lr, &st);
  assert_true(st.udp_datagrams > 0);
  assert_int_equal(st.unix_datagrams, 0);
}

static void every_meter_type_arrives_exactly_over_a_unix_socket(void **state) {
  (void)state;
  send_every_type(unix_loc);
  lr_stats_t st;
  lr_stats(lr, &st);
  assert_true(st.unix_datagrams > 0);
  assert_int_equal(st.udp_datagrams, 0);
}

/* ------------------------------------------------------------------------ */
/* What a line carries                                                       */
/* ------------------------------------------------------------------------ */

static void lines_are_sanitized_and_carry_only_the_process_tags_and_no_statistic(void **state) {
  (void)state;
  setenv("TITUS_CONTAINER_NAME", " box:1 ", 1);
  setenv("NETFLIX_PROCESS_NAME", "worker 7", 1);
  setenv("NETFLIX_APP", "myapp", 1);
  setenv("SPECTATOR_COMMON_TAGS", "env=prod", 1);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = udp_loc;
  cfg.frequency_s = 3600;
  cfg.flush_at_exit = 0;
  cfg.common_tags = SPECTATOR_TAGS("shard", "a/b");
  spectator_registry_t *r = spectator_registry_new(&cfg);
  unsetenv("TITUS_CONTAINER_NAME");
  unsetenv("NETFLIX_PROCESS_NAME");
  unsetenv("NETFLIX_APP");
  unsetenv("SPECTATOR_COMMON_TAGS");
  spectator_counter_increment(
      spectator_registry_counter(r, "my counter", SPECTATOR_TAGS("k=1", "v:2,\xe2\x82\xac")));
  spectator_gauge_set(
      spectator_registry_gauge(r, "g", SPECTATOR_TAGS("statistic", "mine", "shard", "own")), 1);
  spectator_registry_stop(r);
  assert_true(lr_wait_lines(lr, 2, 10000));
  spectator_registry_free(r);
  char line[512];
  assert_true(lr_line(lr, 0, line, sizeof(line)));
  assert_string_equal(line,
                      "c:my_counter,nf.container=box_1,nf.process=worker_7,shard=a_b,k_1=v_2__:1");
  /* an id's own tags win over the common ones; its statistic tag is its own */
  assert_true(lr_line(lr, 1, line, sizeof(line)));
  assert_string_equal(line,
                      "g:g,nf.container=box_1,nf.process=worker_7,shard=own,statistic=mine:1");
  assert_false(lr_line(lr, 2, line, sizeof(line)));
  assert_no_errors();
}

/* ------------------------------------------------------------------------ */
/* Datagrams                                                                 */
/* ------------------------------------------------------------------------ */

static void many_samples_arrive_whole_in_datagrams_of_at_most_64_KiB(void **state) {
  (void)state;
  spectator_registry_t *r = line_reg(unix_loc, 3600);
  spectator_timer_t *t =
      spectator_registry_timer(r, "server.requestLatency", SPECTATOR_TAGS("endpoint", "items"));
  int64_t total = 0;
  /* Batches below a ring's capacity, each taken by the drains before the next. */
  for (int b = 0; b < 20; b++) {
    for (int i = 0; i < 5000; i++) {
      int64_t ns = (int64_t)(b * 5000 + i) * 997;
      spectator_timer_record_ns(t, ns);
      total += ns;
    }
    assert_true(lr_wait_lines(lr, (uint64_t)(b + 1) * 5000, 20000));
  }
  spectator_registry_free(r);
  /* and the final flush: how many lines the drains sent */
  assert_true(lr_wait_lines(lr, 100001, 10000));
  assert_true(get('c', "spectator.measurements,id=sent").sum == 100000);
  lr_stats_t st;
  lr_stats(lr, &st);
  assert_int_equal(st.lines, 100001);
  assert_true(st.datagrams >= 100000 * 40 / 65507);
  assert_true(st.max_datagram <= 65507);
  lr_meter_t x = get('t', "server.requestLatency,endpoint=items");
  assert_int_equal(x.count, 100000);
  assert_int_equal(x.total_ns, total);
  assert_no_errors();
}

static void a_line_of_64_KiB_is_sent_alone_and_a_longer_one_is_dropped_and_counted(void **state) {
  (void)state;
  spectator_registry_t *r = line_reg(unix_loc, 3600);
  /* "g:n,k=<v>:1" is 8 bytes and the value */
  size_t vlen = 65507 - 8;
  char *v = malloc(vlen + 2);
  memset(v, 'v', vlen + 1);
  v[vlen] = '\0';
  spectator_gauge_set(spectator_registry_gauge(r, "n", SPECTATOR_TAGS("k", v)), 1);
  v[vlen] = 'w';
  v[vlen + 1] = '\0';
  spectator_gauge_set(spectator_registry_gauge(r, "n", SPECTATOR_TAGS("k", v)), 1);
  spectator_counter_increment(spectator_registry_counter(r, "small", NULL));
  tu_log_capture();
  spectator_registry_stop(r);
  assert_true(lr_wait_lines(lr, 2, 10000));
  lr_stats_t st;
  lr_stats(lr, &st);
  assert_int_equal(st.lines, 2);
  assert_int_equal(st.datagrams, 2);
  assert_int_equal(st.max_datagram, 65507);
  assert_int_equal(st.bytes, 65507 + 9); /* and "c:small:1" */
  assert_true(snap_value(r, "spectator.measurements",
                         SPECTATOR_TAGS("id", "dropped", "error", "validation", "statistic",
                                        "count")) == 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "longer than a datagram"), 1);
  tu_log_release();
  spectator_registry_free(r);
  free(v);
  assert_no_errors();
}

/* ------------------------------------------------------------------------ */
/* none, memory, file, stdout                                                */
/* ------------------------------------------------------------------------ */

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static void none_sends_nothing_even_with_a_uri_and_recording_still_works(void **state) {
  (void)state;
  agg_t *agg = agg_start(0);
  assert_non_null(agg);
  char uri[64];
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/api/v4/update", agg_port(agg));
  int threads = count_threads();
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.output_location = "none";
  cfg.frequency_s = 0.01;
  cfg.env_common_tags = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_int_equal(spectator_registry_start(r), 0);
  assert_int_equal(count_threads(), threads); /* no publishing thread */
  spectator_counter_t *c = spectator_registry_counter(r, "c", NULL);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  spectator_counter_add(c, 3);
  spectator_timer_record(t, 0.5);
  /* recording works as it does for the aggregator: the meters keep it */
  assert_true(spectator_counter_count(c) == 3);
  assert_int_equal(spectator_timer_count(t), 1);
  /* ten intervals: nothing may arrive anywhere */
  usleep(100 * 1000);
  spectator_registry_stop(r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 0);
  lr_stats_t ls;
  lr_stats(lr, &ls);
  assert_int_equal(ls.datagrams, 0);
  assert_true(snap_value(r, "c", SPECTATOR_TAGS("statistic", "count")) == 3);
  spectator_registry_free(r);
  agg_stop(agg);
}

typedef struct {
  spectator_registry_t *r;
  int n;
} rec_arg_t;

static void *record_many(void *arg) {
  rec_arg_t *a = arg;
  spectator_counter_t *c = spectator_registry_counter(a->r, "hits", NULL);
  spectator_timer_t *t = spectator_registry_timer(a->r, "lat", NULL);
  for (int i = 0; i < a->n; i++) {
    spectator_counter_increment(c);
    if (i % 4 == 0) spectator_timer_record_ns(t, 1000);
  }
  return NULL;
}

static void *read_lines(void *arg) {
  spectator_registry_t *r = arg;
  for (int i = 0; i < 50; i++) spectator_lines_free(spectator_registry_lines(r));
  return NULL;
}

/* Threads record and read the memory output while its publisher runs:
 * the lines hold every increment and sample exactly once. */
static void memory_keeps_every_line_until_cleared_whoever_reads_it(void **state) {
  (void)state;
  spectator_registry_t *r = line_reg("memory", 0.01);
  enum { T = 4, N = 4000 }; /* N / 4 samples per thread: below a ring's capacity */
  pthread_t th[T + 1];
  rec_arg_t a = {r, N};
  for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, record_many, &a);
  pthread_create(&th[T], NULL, read_lines, r);
  for (int i = 0; i <= T; i++) pthread_join(th[i], NULL);
  spectator_lines_t *ls = spectator_registry_lines(r);
  double hits = 0;
  size_t samples = 0;
  for (size_t i = 0; i < spectator_lines_count(ls); i++) {
    const char *l = spectator_lines_get(ls, i);
    if (strncmp(l, "c:hits:", 7) == 0)
      hits += strtod(l + 7, NULL);
    else if (strcmp(l, "t:lat:1e-06") == 0)
      samples++;
    else if (strncmp(l, "c:spectator.measurements,", 25) != 0)
      fail_msg("unexpected line %s", l);
  }
  assert_true(hits == T * N);
  assert_int_equal(samples, T * N / 4);
  spectator_lines_free(ls);
  spectator_registry_lines_clear(r);
  ls = spectator_registry_lines(r);
  assert_int_equal(spectator_lines_count(ls), 0);
  assert_null(spectator_lines_get(ls, 0));
  spectator_lines_free(ls);
  spectator_registry_free(r);
  /* Not a memory output: NULL, logged. */
  tu_log_capture();
  spectator_registry_t *u = line_reg(udp_loc, 3600);
  assert_null(spectator_registry_lines(u));
  assert_null(spectator_registry_lines(NULL));
  spectator_registry_lines_clear(u);
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "no memory output") >= 1);
  tu_log_release();
  spectator_registry_free(u);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void file_output_appends_one_line_per_measurement(void **state) {
  (void)state;
  char path[128], loc[160];
  snprintf(path, sizeof(path), "/tmp/spectator-test-lines-%d.txt", (int)getpid());
  snprintf(loc, sizeof(loc), "file://%s", path);
  FILE *f = fopen(path, "w");
  fputs("kept\n", f);
  fclose(f);
  spectator_registry_t *r = line_reg(loc, 3600);
  spectator_counter_add(spectator_registry_counter(r, "c", NULL), 2);
  spectator_dist_summary_record(spectator_registry_dist_summary(r, "d", NULL), 0.75);
  spectator_registry_stop(r);
  char *s = read_file(path);
  assert_string_equal(s, "kept\nd:d:0.75\nc:c:2\n");
  free(s);
  spectator_registry_free(r);
  unlink(path);
}

/* Run tests/lines_exit_child with these extra environment variables; its
 * stdout goes to out (NULL: inherited). Returns its exit status. */
static int run_child(const char *const *env_extra, char *out, size_t out_size) {
  char *envp[64];
  size_t n = 0;
  for (char **e = environ; *e && n < 40; e++)
    if (strncmp(*e, "SPECTATOR_", 10) != 0) envp[n++] = *e;
  for (size_t i = 0; env_extra[i] && n < 63; i++) envp[n++] = (char *)env_extra[i];
  envp[n] = NULL;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out) posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, pfd[0]);
  char *argv[] = {(char *)LINES_EXIT_CHILD, NULL};
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, LINES_EXIT_CHILD, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[1]);
  size_t len = 0;
  ssize_t k;
  while (out && len + 1 < out_size && (k = read(pfd[0], out + len, out_size - 1 - len)) > 0)
    len += (size_t)k;
  if (out) out[len] = '\0';
  close(pfd[0]);
  int status;
  waitpid(pid, &status, 0);
  return status;
}

static void stdout_output_writes_lines_to_the_standard_output(void **state) {
  (void)state;
  const char *env[] = {"SPECTATOR_OUTPUT_LOCATION=stdout", "SPECTATOR_FREQUENCY=3600", NULL};
  char out[4096];
  int status = run_child(env, out, sizeof(out));
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_string_equal(out, "t:exit.timer:0.5\nt:exit.timer:0.25\nd:exit.summary:3\n"
                           "c:exit.counter,key=v:42\ng:exit.gauge:7\n");
}

/* ------------------------------------------------------------------------ */
/* Exit and fork                                                             */
/* ------------------------------------------------------------------------ */

static void a_process_that_returns_from_main_flushes_its_lines(void **state) {
  (void)state;
  char loc[200];
  snprintf(loc, sizeof(loc), "SPECTATOR_OUTPUT_LOCATION=%s", unix_loc);
  const char *env[] = {loc, "SPECTATOR_FREQUENCY=3600", NULL};
  int status = run_child(env, NULL, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(lr_wait_lines(lr, 5, 10000));
  assert_true(get('c', "exit.counter,key=v").sum == 42);
  lr_meter_t t = get('t', "exit.timer");
  assert_int_equal(t.count, 2);
  assert_int_equal(t.total_ns, 750000000);
  assert_true(get('d', "exit.summary").sum == 3);
  assert_true(get('g', "exit.gauge").last == 7);
  assert_no_errors();
}

/* Samples recorded after a stop wait in the buffers that no publish will
 * drain again: the process says so when it ends, with the counter's value. */
static void samples_recorded_after_a_stop_are_reported_at_exit(void **state) {
  (void)state;
  char loc[200];
  snprintf(loc, sizeof(loc), "SPECTATOR_OUTPUT_LOCATION=%s", unix_loc);
  const char *env[] = {loc, "SPECTATOR_FREQUENCY=3600", "LINES_EXIT_LATE=1", NULL};
  char out[4096];
  int status = run_child(env, out, sizeof(out));
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* the sample before the stop was sent by it */
  assert_true(lr_wait_lines(lr, 1, 10000));
  assert_int_equal(get('t', "late.timer").count, 1);
  const char *want = "1 meter and 3 samples (timers and distribution summaries) of 1 registry "
                     "recorded after the last publish will never be sent";
  if (!strstr(out, want)) print_error("child's log:\n%s\n", out);
  assert_non_null(strstr(out, want));
  assert_no_errors();
}

/* ------------------------------------------------------------------------ */
/* Slow, missing and absent receivers                                        */
/* ------------------------------------------------------------------------ */

/* Record timer samples and counter increments for a while: the longest batch
 * of 1000 calls, in ns. */
static int64_t record_for(spectator_registry_t *r, int64_t duration_ns) {
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  spectator_counter_t *c = spectator_registry_counter(r, "c", NULL);
  int64_t worst = 0, end = now_ns() + duration_ns;
  while (now_ns() < end) {
    int64_t t0 = now_ns();
    for (int i = 0; i < 1000; i++) {
      spectator_timer_record_ns(t, i);
      spectator_counter_increment(c);
    }
    int64_t d = now_ns() - t0;
    if (d > worst) worst = d;
  }
  return worst;
}

/* What stopping (a final flush) costs with a receiver that does not take. */
static int64_t time_stop(spectator_registry_t *r) {
  int64_t t0 = now_ns();
  spectator_registry_stop(r);
  return now_ns() - t0;
}

static spectator_registry_t *slow_reg(const char *loc) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = loc;
  cfg.frequency_s = 0.05;
  cfg.timeout_s = 0.5;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  return r;
}

/* A blocked send would hold a recording call for a whole publish timeout or
 * more; on a loaded machine a batch of 1000 calls may lose its CPU for a
 * while, so the bound is generous but far below a blocked send. */
#define WORST_BATCH_NS (200 * 1000000LL)
/* A stop flushes within the timeout (0.5 s) and a little more. */
#define MAX_STOP_NS (1500 * 1000000LL)

static void udp_to_a_port_nobody_listens_on_never_blocks_recording(void **state) {
  (void)state;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  bind(s, (struct sockaddr *)&a, sizeof(a));
  getsockname(s, (struct sockaddr *)&a, &len);
  close(s); /* nobody listens there now */
  char loc[64];
  snprintf(loc, sizeof(loc), "udp://127.0.0.1:%d", ntohs(a.sin_port));
  tu_log_capture(); /* full rings are logged */
  spectator_registry_t *r = slow_reg(loc);
  int64_t worst = record_for(r, 500 * 1000000LL);
  assert_true(worst < WORST_BATCH_NS);
  assert_true(time_stop(r) < MAX_STOP_NS);
  tu_log_release();
  spectator_registry_free(r);
}

static void a_missing_unix_socket_never_blocks_recording_and_drops_are_counted(void **state) {
  (void)state;
  tu_log_capture();
  spectator_registry_t *r = slow_reg("unix:///tmp/spectator-test-no-such-dir/none.sock");
  int64_t worst = record_for(r, 500 * 1000000LL);
  assert_true(worst < WORST_BATCH_NS);
  assert_true(time_stop(r) < MAX_STOP_NS);
  double other =
      snap_value(r, "spectator.measurements",
                 SPECTATOR_TAGS("id", "dropped", "error", "other", "statistic", "count"));
  assert_true(other > 0);
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "could not connect to") >= 1);
  tu_log_release();
  spectator_registry_free(r);
}

static void a_receiver_that_does_not_read_never_blocks_recording_or_a_stop(void **state) {
  (void)state;
  lr_pause(lr, true);
  tu_log_capture();
  spectator_registry_t *r = slow_reg(unix_loc);
  int64_t worst = record_for(r, 1000 * 1000000LL);
  assert_true(worst < WORST_BATCH_NS);
  assert_true(time_stop(r) < MAX_STOP_NS);
  /* what could not be sent in time was dropped, counted and logged */
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "could not send in time") >= 1);
  double other =
      snap_value(r, "spectator.measurements",
                 SPECTATOR_TAGS("id", "dropped", "error", "other", "statistic", "count"));
  assert_true(other > 0);
  tu_log_release();
  spectator_registry_free(r);
  lr_pause(lr, false);
}

/* A registry writing to loc that is not started (nothing is sent until a
 * read of the memory output, a stop or a free), without common tags;
 * max_meters 0: the default cap. */
static spectator_registry_t *unstarted_registry(const char *loc, size_t max_meters) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = loc;
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  if (max_meters) cfg.max_meters = max_meters;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  return r;
}

static void a_full_sample_ring_drops_counts_and_logs(void **state) {
  (void)state;
  spectator_registry_t *r = unstarted_registry("memory", 0);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  /* one thread writes one ring of 8192 samples */
  for (int i = 0; i < 10000; i++) spectator_timer_record_ns(t, 1000);
  tu_log_capture();
  /* The samples are taken first and the drops counted, then the meters are
   * measured: the count is in the same publish. */
  spectator_lines_t *ls = spectator_registry_lines(r);
  assert_int_equal(spectator_lines_count(ls), 8193);
  for (size_t i = 0; i < 8192; i++) assert_string_equal(spectator_lines_get(ls, i), "t:t:1e-06");
  assert_string_equal(spectator_lines_get(ls, 8192),
                      "c:spectator.measurements,error=buffer-full,id=dropped:1808");
  spectator_lines_free(ls);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY,
                                         "1808 measurements for memory dropped: the buffers "
                                         "were full"),
                   1);
  tu_log_release();
  spectator_registry_lines_clear(r);
  ls = spectator_registry_lines(r);
  assert_int_equal(spectator_lines_count(ls), 0);
  spectator_lines_free(ls);
  spectator_registry_free(r);
}

/* Timer and summary samples wait in the rings until a publish takes them: a
 * registry freed before any publish never sends them, and says so, as it
 * does for the values of its counters. */
static void samples_no_publish_will_send_are_reported_when_the_registry_is_freed(void **state) {
  (void)state;
  spectator_registry_t *r = unstarted_registry("udp://127.0.0.1:9", 0);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  spectator_dist_summary_t *d = spectator_registry_dist_summary(r, "d", NULL);
  for (int i = 0; i < 5; i++) spectator_timer_record_ns(t, 1000);
  for (int i = 0; i < 7; i++) spectator_dist_summary_record(d, 3);
  tu_log_capture();
  spectator_registry_free(r);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "will never be sent"), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "0 meters and 12 samples"), 1);
  tu_log_release();
}

/* The drop count is one of the library's meters, outside the cap: a registry
 * whose users filled it still says what it dropped. */
static void a_full_registry_still_counts_what_the_output_dropped(void **state) {
  (void)state;
  spectator_registry_t *r = unstarted_registry("memory", 1);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  tu_log_capture();
  for (int i = 0; i < 8200; i++) spectator_timer_record_ns(t, 1000);
  spectator_lines_t *ls = spectator_registry_lines(r);
  assert_int_equal(spectator_lines_count(ls), 8193);
  assert_string_equal(spectator_lines_get(ls, 8192),
                      "c:spectator.measurements,error=buffer-full,id=dropped:8");
  spectator_lines_free(ls);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "registry is full"), 0);
  tu_log_release();
  spectator_registry_free(r);
}

/* ------------------------------------------------------------------------ */
/* Bad locations; transient meters                                           */
/* ------------------------------------------------------------------------ */

static void a_bad_location_is_logged_and_the_aggregator_is_used(void **state) {
  (void)state;
  agg_t *agg = agg_start(0);
  char uri[64];
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/api/v4/update", agg_port(agg));
  tu_log_capture();
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.output_location = "udp://localhost";
  cfg.frequency_s = 3600;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT,
                                         "output_location 'udp://localhost' "
                                         "is not valid: udp:// needs a host and a port"),
                   1);
  spectator_counter_add(spectator_registry_counter(r, "cc", NULL), 2);
  spectator_registry_stop(r);
  double v = NAN;
  assert_int_equal(agg_get(agg, "cc", SPECTATOR_TAGS("statistic", "count"), &v), 0);
  assert_true(v == 2);
  spectator_registry_free(r);
  agg_stop(agg);

  /* The environment: logged, and the default (the aggregator) kept. */
  setenv("SPECTATOR_OUTPUT_LOCATION", "spectatord", 1);
  spectator_config_from_env(&cfg);
  unsetenv("SPECTATOR_OUTPUT_LOCATION");
  assert_null(cfg.output_location);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT,
                                         "SPECTATOR_OUTPUT_LOCATION='spectatord' is not valid"),
                   1);
  setenv("SPECTATOR_OUTPUT_LOCATION", " udp ", 1);
  spectator_config_from_env(&cfg);
  unsetenv("SPECTATOR_OUTPUT_LOCATION");
  assert_string_equal(cfg.output_location, " udp ");
  tu_log_release();
}

/* One-shot timer calls make transient meters whose samples wait in the rings;
 * when the meters expire and a snapshot frees them, every sample was taken
 * first (an address in a ring must never outlive its meter: AddressSanitizer
 * and valgrind would see the use after free). */
static void transient_sampled_meters_expire_only_after_their_samples_are_taken(void **state) {
  (void)state;
  tu_clock_t clk;
  tu_clock_set(&clk, 1000000000LL);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = "memory";
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  cfg.meter_ttl_s = 1;
  tu_clock_install(&cfg, &clk);
  spectator_registry_t *r = spectator_registry_new(&cfg);
  char name[32];
  for (int round = 0; round < 20; round++) {
    for (int j = 0; j < 50; j++) {
      snprintf(name, sizeof(name), "x.%d.%d", round, j);
      spectator_registry_record(r, SPECTATOR_METER_TIMER, name, NULL, 0.5);
    }
    tu_clock_advance(&clk, 2000000000LL);
    /* expire them (idle for longer than the TTL), then free them */
    spectator_measurements_free(spectator_registry_snapshot(r));
    spectator_measurements_free(spectator_registry_snapshot(r));
  }
  assert_int_equal(spectator_registry_size(r), 0);
  spectator_lines_t *ls = spectator_registry_lines(r);
  assert_int_equal(spectator_lines_count(ls), 1000);
  for (size_t i = 0; i < spectator_lines_count(ls); i++) {
    snprintf(name, sizeof(name), "t:x.%zu.%zu:0.5", i / 50, i % 50);
    assert_string_equal(spectator_lines_get(ls, i), name);
  }
  spectator_lines_free(ls);
  spectator_registry_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(every_meter_type_arrives_exactly_over_udp, reset),
      cmocka_unit_test_setup(every_meter_type_arrives_exactly_over_a_unix_socket, reset),
      cmocka_unit_test_setup(lines_are_sanitized_and_carry_only_the_process_tags_and_no_statistic,
                             reset),
      cmocka_unit_test_setup(many_samples_arrive_whole_in_datagrams_of_at_most_64_KiB, reset),
      cmocka_unit_test_setup(a_line_of_64_KiB_is_sent_alone_and_a_longer_one_is_dropped_and_counted,
                             reset),
      cmocka_unit_test_setup(none_sends_nothing_even_with_a_uri_and_recording_still_works, reset),
      cmocka_unit_test_setup(memory_keeps_every_line_until_cleared_whoever_reads_it, reset),
      cmocka_unit_test_setup(file_output_appends_one_line_per_measurement, reset),
      cmocka_unit_test_setup(stdout_output_writes_lines_to_the_standard_output, reset),
      cmocka_unit_test_setup(a_process_that_returns_from_main_flushes_its_lines, reset),
      cmocka_unit_test_setup(samples_recorded_after_a_stop_are_reported_at_exit, reset),
      cmocka_unit_test_setup(udp_to_a_port_nobody_listens_on_never_blocks_recording, reset),
      cmocka_unit_test_setup(a_missing_unix_socket_never_blocks_recording_and_drops_are_counted,
                             reset),
      cmocka_unit_test_setup(a_receiver_that_does_not_read_never_blocks_recording_or_a_stop, reset),
      cmocka_unit_test_setup(a_full_sample_ring_drops_counts_and_logs, reset),
      cmocka_unit_test_setup(a_full_registry_still_counts_what_the_output_dropped, reset),
      cmocka_unit_test_setup(samples_no_publish_will_send_are_reported_when_the_registry_is_freed,
                             reset),
      cmocka_unit_test_setup(a_bad_location_is_logged_and_the_aggregator_is_used, reset),
      cmocka_unit_test_setup(transient_sampled_meters_expire_only_after_their_samples_are_taken,
                             reset),
  };
  return cmocka_run_group_tests(tests, NULL, teardown);
}
