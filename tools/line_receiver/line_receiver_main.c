/*
 * spectator-line-receiver: a local stand-in for spectatord that shows what a
 * program sends in spectatord's line protocol (line_receiver.h).
 *
 *   spectator-line-receiver [--udp PORT] [--unix PATH] [--quiet]
 *
 * Listens on UDP 127.0.0.1:PORT (default 1234) and, with --unix, on a unix
 * datagram socket at PATH; prints every line received (unless --quiet) and
 * every line that does not parse, to stderr, with the reason. On SIGINT or
 * SIGTERM it prints what it received: datagrams, lines, errors and the
 * number of meters.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "line_receiver.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int usage(const char *prog) {
  fprintf(stderr, "usage: %s [--udp PORT] [--unix PATH] [--quiet]\n", prog);
  return 2;
}

int main(int argc, char **argv) {
  int port = 1234;
  const char *path = NULL;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--udp") == 0 && i + 1 < argc) {
      char *end;
      long p = strtol(argv[++i], &end, 10);
      if (*end || p < -1 || p > 65535) return usage(argv[0]);
      port = (int)p;
    } else if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc) {
      path = argv[++i];
    } else if (strcmp(argv[i], "--quiet") == 0) {
      quiet = 1;
    } else {
      return usage(argv[0]);
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  lr_t *lr = lr_start(port, path);
  if (!lr) return 1;
  if (!quiet) lr_echo(lr, stdout);
  setvbuf(stdout, NULL, _IOLBF, 0);
  fprintf(stderr, "listening on udp://127.0.0.1:%d%s%s\n", lr_udp_port(lr),
          path ? " and unix://" : "", path ? path : "");
  size_t errors_shown = 0;
  while (!stop) {
    usleep(100 * 1000);
    char buf[600];
    while (lr_error(lr, errors_shown, buf, sizeof(buf))) {
      fprintf(stderr, "not spectatord's protocol: %s\n", buf);
      errors_shown++;
    }
  }
  lr_stats_t st;
  lr_stats(lr, &st);
  fprintf(stderr,
          "%llu datagrams (%llu udp, %llu unix, %llu bytes, largest %llu), %llu lines, %llu "
          "errors, %zu meters\n",
          (unsigned long long)st.datagrams, (unsigned long long)st.udp_datagrams,
          (unsigned long long)st.unix_datagrams, (unsigned long long)st.bytes,
          (unsigned long long)st.max_datagram, (unsigned long long)st.lines,
          (unsigned long long)st.errors, lr_meter_count(lr));
  lr_stop(lr);
  return 0;
}
