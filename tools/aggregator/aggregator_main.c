/*
 * spectator-aggregator: a local Atlas aggregator, for trying spectator-c out,
 * for the demo and for out-of-process tests. Listens on 127.0.0.1 only.
 *
 *   spectator-aggregator [--port N] [--print] [--duration SECONDS]
 *                        [--port-file FILE] [--step SECONDS]
 *
 * Prints "listening on http://127.0.0.1:PORT/api/v4/update" and the address of
 * its web page (http://127.0.0.1:PORT/, graphs of every series it received,
 * per interval, updated live; the page's files are compiled in) once it serves,
 * writes PORT to FILE (atomically: FILE.tmp then rename; removed at exit) and
 * runs until SIGINT/SIGTERM or for SECONDS. With --print, each request, each
 * datapoint and each interval summary is printed to stdout (flushed), e.g.
 *
 *   [interval 3] http.server.requests{endpoint=_a,statistic=count} add 12 \
 *       (interval sum 12, total sum 40)        <- one line, wrapped here
 *
 * The control endpoints (GET /api/v1/stats, GET /api/v1/series,
 * POST /api/v1/fail?..., POST /api/v1/reset) are described in aggregator.h.
 */
#include "aggregator.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out) {
  fprintf(out, "usage: spectator-aggregator [--port N] [--print] [--duration SECONDS]\n"
               "                            [--port-file FILE] [--step SECONDS]\n"
               "A local Atlas aggregator on 127.0.0.1: point SPECTATOR_URI at\n"
               "http://127.0.0.1:PORT/api/v4/update and open http://127.0.0.1:PORT/\n"
               "for graphs of what it receives.\n"
               "  --port N           port on 127.0.0.1 (default 0: an ephemeral port)\n"
               "  --print            print every received datapoint to stdout\n"
               "  --duration SECONDS exit after this long (default: until SIGINT/SIGTERM)\n"
               "  --port-file FILE   write the port actually bound to FILE\n"
               "  --step SECONDS     length of a printed interval (default 5)\n");
}

static int parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < 0) return -1;
  *out = v;
  return 0;
}

static int write_port_file(const char *path, int port) {
  size_t n = strlen(path) + 5;
  char *tmp = malloc(n);
  if (!tmp) return -1;
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int rc = -1;
  if (f) {
    int ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) == 0) rc = 0;
    if (rc != 0) remove(tmp);
  }
  free(tmp);
  return rc;
}

int main(int argc, char **argv) {
  long port = 0;
  int print = 0;
  double duration = -1, step = 5;
  const char *port_file = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    if (strcmp(a, "--print") == 0) {
      print = 1;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--port") == 0 && has_value) {
      char *end;
      errno = 0;
      port = strtol(argv[++i], &end, 10);
      if (errno || *end || end == argv[i] || port < 0 || port > 65535) {
        fprintf(stderr, "spectator-aggregator: bad --port '%s'\n", argv[i]);
        return 2;
      }
    } else if (strcmp(a, "--duration") == 0 && has_value) {
      if (parse_seconds(argv[++i], &duration) != 0) {
        fprintf(stderr, "spectator-aggregator: bad --duration '%s'\n", argv[i]);
        return 2;
      }
    } else if (strcmp(a, "--step") == 0 && has_value) {
      if (parse_seconds(argv[++i], &step) != 0 || step <= 0) {
        fprintf(stderr, "spectator-aggregator: bad --step '%s'\n", argv[i]);
        return 2;
      }
    } else if (strcmp(a, "--port-file") == 0 && has_value) {
      port_file = argv[++i];
    } else {
      fprintf(stderr, "spectator-aggregator: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }

  /* Block the stop signals before any thread exists, so that every server
   * thread inherits the mask and only sigtimedwait below sees them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  agg_t *agg = agg_start((int)port);
  if (!agg) {
    fprintf(stderr, "spectator-aggregator: cannot listen on 127.0.0.1:%ld\n", port);
    return 1;
  }
  agg_set_interval_step(agg, step);
  if (print) agg_set_verbose(agg, stdout);
  agg_serve_files(agg, agg_web_files);
  if (port_file && write_port_file(port_file, agg_port(agg)) != 0) {
    fprintf(stderr, "spectator-aggregator: cannot write %s: %s\n", port_file, strerror(errno));
    agg_stop(agg);
    return 1;
  }
  printf("listening on %s\n", agg_url(agg));
  printf("web page: http://127.0.0.1:%d/\n", agg_port(agg));
  fflush(stdout);

  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int sig = 0;
  for (;;) {
    double wait = 3600;
    if (duration >= 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      double left =
          duration - ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9);
      if (left <= 0) break;
      if (left < wait) wait = left;
    }
    struct timespec ts = {(time_t)wait, (long)((wait - floor(wait)) * 1e9)};
    sig = sigtimedwait(&stop, NULL, &ts);
    if (sig > 0) break;
  }

  agg_stats_t st;
  agg_stats(agg, &st);
  agg_stop(agg);
  if (port_file) remove(port_file);
  if (print) {
    printf("stopped%s%s: %zu requests, %zu datapoints accepted, %zu dropped\n",
           sig > 0 ? " by " : "",
           sig == SIGINT    ? "SIGINT"
           : sig == SIGTERM ? "SIGTERM"
                            : "",
           st.requests, st.measurements_accepted, st.measurements_dropped);
    fflush(stdout);
  }
  return 0;
}
