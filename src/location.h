/*
 * Private: output locations (location.c), the strings of
 * spectator_config_t.output_location and SPECTATOR_OUTPUT_LOCATION, which are
 * spectator-py 1.x's: where a registry sends what it records.
 */
#ifndef SPECTATOR_LOCATION_H
#define SPECTATOR_LOCATION_H

#include "common.h"

typedef enum {
  SPECTATOR__OUT_AGGREGATOR = 0, /* unset: the Atlas aggregator at cfg.uri */
  SPECTATOR__OUT_NONE,           /* nothing is sent anywhere */
  SPECTATOR__OUT_MEMORY,         /* lines kept in memory (spectator_registry_lines) */
  SPECTATOR__OUT_STDOUT,
  SPECTATOR__OUT_STDERR,
  SPECTATOR__OUT_FILE,
  SPECTATOR__OUT_UDP,
  SPECTATOR__OUT_UNIX /* a unix datagram socket */
} spectator__out_kind_t;

/* The longest path of a unix socket (sun_path holds 108 bytes with its NUL),
 * of a file, and of a host name. */
#define SPECTATOR__UNIX_PATH_MAX 107
#define SPECTATOR__FILE_PATH_MAX 4095
#define SPECTATOR__HOST_MAX 255

/* spectatord's defaults, for "udp" and "unix". */
#define SPECTATOR__DEFAULT_UDP "udp://127.0.0.1:1234"
#define SPECTATOR__DEFAULT_UNIX "unix:///run/spectatord/spectatord.unix"

typedef struct {
  spectator__out_kind_t kind;
  int port;                                 /* udp */
  char host[SPECTATOR__HOST_MAX + 1];       /* udp: without the brackets of an IPv6 address */
  char path[SPECTATOR__FILE_PATH_MAX + 1];  /* file and unix */
  char text[SPECTATOR__FILE_PATH_MAX + 16]; /* the full location, "udp" spelled out */
} spectator__location_t;

/* Parse a location: none, memory, stdout, stderr, udp (= udp://127.0.0.1:1234),
 * udp://host:port (an IPv6 host in brackets), unix (=
 * unix:///run/spectatord/spectatord.unix), unix:///path, file:///path, with
 * surrounding white space ignored. NULL or blank is the aggregator. Returns 0,
 * or SPECTATOR_EINVAL with *why (a static string) saying what is wrong; out
 * is then the aggregator. Logs nothing. */
int spectator__location_parse(const char *s, spectator__location_t *out, const char **why);

/* True for the kinds that write spectatord's line protocol (all but the
 * aggregator and none). */
static inline bool spectator__location_is_lines(spectator__out_kind_t k) {
  return k != SPECTATOR__OUT_AGGREGATOR && k != SPECTATOR__OUT_NONE;
}

/* What a log line says the valid locations are. */
#define SPECTATOR__LOCATION_EXPECTED \
  "none, memory, stdout, stderr, udp, udp://host:port, unix, unix:///path or file:///path"

#endif
