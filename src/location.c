/*
 * Output locations: parsing the strings that choose where a registry sends
 * what it records (location.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "location.h"

static void set_text(spectator__location_t *out, const char *prefix, const char *rest) {
  snprintf(out->text, sizeof(out->text), "%s%s", prefix, rest);
}

/* An absolute path of at most max bytes, without control characters. */
static bool valid_path(const char *p, size_t n, size_t max) {
  if (n == 0 || p[0] != '/' || n > max) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) return false;
  return true;
}

/* udp://host:port, host a name, an IPv4 address or [an IPv6 address]. */
static int parse_udp(const char *s, size_t n, spectator__location_t *out, const char **why) {
  const char *host = s, *colon;
  size_t hlen;
  if (n && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close || close + 1 >= s + n || close[1] != ':') {
      *why = "an IPv6 address goes in brackets: udp://[::1]:1234";
      return SPECTATOR_EINVAL;
    }
    host = s + 1;
    hlen = (size_t)(close - host);
    colon = close + 1;
  } else {
    colon = memchr(s, ':', n);
    if (!colon) {
      *why = "udp:// needs a host and a port: udp://host:port";
      return SPECTATOR_EINVAL;
    }
    hlen = (size_t)(colon - s);
    if (memchr(s, '[', hlen) || memchr(s, ']', hlen) || memchr(colon + 1, ':', n - hlen - 1)) {
      *why = "an IPv6 address goes in brackets: udp://[::1]:1234";
      return SPECTATOR_EINVAL;
    }
  }
  if (hlen == 0 || hlen > SPECTATOR__HOST_MAX) {
    *why = "udp:// needs a host of 1 to 255 characters";
    return SPECTATOR_EINVAL;
  }
  for (size_t i = 0; i < hlen; i++) {
    unsigned char c = (unsigned char)host[i];
    if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '%')) {
      *why = "udp:// host has a character a host name or address cannot have";
      return SPECTATOR_EINVAL;
    }
  }
  const char *p = colon + 1, *end = s + n;
  long port = 0;
  if (p == end) {
    *why = "udp:// needs a port: udp://host:port";
    return SPECTATOR_EINVAL;
  }
  for (; p < end; p++) {
    if (!isdigit((unsigned char)*p) || (port = port * 10 + (*p - '0')) > 65535) {
      *why = "udp:// port must be a number from 1 to 65535";
      return SPECTATOR_EINVAL;
    }
  }
  if (port < 1) {
    *why = "udp:// port must be a number from 1 to 65535";
    return SPECTATOR_EINVAL;
  }
  memcpy(out->host, host, hlen);
  out->host[hlen] = '\0';
  out->port = (int)port;
  out->kind = SPECTATOR__OUT_UDP;
  snprintf(out->text, sizeof(out->text), "udp://%s%s%s:%d", host[hlen] == ']' ? "[" : "", out->host,
           host[hlen] == ']' ? "]" : "", out->port);
  return 0;
}

int spectator__location_parse(const char *s, spectator__location_t *out, const char **why) {
  memset(out, 0, sizeof(*out));
  *why = NULL;
  if (!s) return 0;
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (n == 0) return 0;

  static const struct {
    const char *name;
    spectator__out_kind_t kind;
    const char *text;
  } words[] = {
      {"none", SPECTATOR__OUT_NONE, "none"},
      {"memory", SPECTATOR__OUT_MEMORY, "memory"},
      {"stdout", SPECTATOR__OUT_STDOUT, "stdout"},
      {"stderr", SPECTATOR__OUT_STDERR, "stderr"},
      {"udp", SPECTATOR__OUT_UDP, SPECTATOR__DEFAULT_UDP},
      {"unix", SPECTATOR__OUT_UNIX, SPECTATOR__DEFAULT_UNIX},
  };
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
    if (strlen(words[i].name) == n && memcmp(s, words[i].name, n) == 0) {
      if (words[i].kind == SPECTATOR__OUT_UDP)
        return spectator__location_parse(words[i].text, out, why);
      if (words[i].kind == SPECTATOR__OUT_UNIX)
        return spectator__location_parse(words[i].text, out, why);
      out->kind = words[i].kind;
      set_text(out, words[i].text, "");
      return 0;
    }
  }
  int rc = SPECTATOR_EINVAL;
  if (n > 7 && memcmp(s, "file://", 7) == 0) {
    if (valid_path(s + 7, n - 7, SPECTATOR__FILE_PATH_MAX)) {
      out->kind = SPECTATOR__OUT_FILE;
      rc = 0;
    } else {
      *why = "file:// needs an absolute path of at most 4095 bytes: file:///path";
    }
  } else if (n > 7 && memcmp(s, "unix://", 7) == 0) {
    if (valid_path(s + 7, n - 7, SPECTATOR__UNIX_PATH_MAX)) {
      out->kind = SPECTATOR__OUT_UNIX;
      rc = 0;
    } else {
      *why = "unix:// needs an absolute path of at most 107 bytes: unix:///path";
    }
  } else if (n >= 6 && memcmp(s, "udp://", 6) == 0) {
    rc = parse_udp(s + 6, n - 6, out, why);
  } else {
    *why = "not a location this library knows";
  }
  if (rc != 0) {
    memset(out, 0, sizeof(*out));
    return rc;
  }
  if (out->kind == SPECTATOR__OUT_FILE || out->kind == SPECTATOR__OUT_UNIX) {
    memcpy(out->path, s + 7, n - 7);
    out->path[n - 7] = '\0';
    set_text(out, out->kind == SPECTATOR__OUT_FILE ? "file://" : "unix://", out->path);
  }
  return 0;
}
