/*
 * Configuration: defaults, the SPECTATOR_* environment variables and the
 * common tags taken from the Netflix environment.
 *
 * Bad values never stop the application: each is logged once on
 * spectator.init, naming the variable and what was expected, and the default
 * is kept.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "location.h"
#include "log.h"
#include "numfmt.h"

/*
 * spectator_config_t is allocated by callers that may have been built against
 * an older, smaller struct: every entry point is given the caller's size and
 * touches only that many bytes. Appending a member to the struct takes one
 * line in include/spectator.h and its default here, a default that keeps the
 * behaviour of the versions without it (a caller built before the member
 * existed always gets the default).
 */
static void config_defaults(spectator_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->frequency_s = 5.0;
  cfg->batch_size = 10000;
  cfg->timeout_s = 1.0;
  cfg->connect_timeout_s = 1.0;
  cfg->env_common_tags = 1;
  cfg->max_meters = 100000;
  cfg->meter_ttl_s = 900.0;
  cfg->auto_start = 1;
  cfg->flush_at_exit = 1;
  cfg->tls_verify = 1;
  /* Members after 0.1.0: */
  cfg->process_metrics = 0;
  cfg->output_location = NULL; /* the Atlas aggregator, as before the member existed */
}

/* Writes the caller's `size` bytes from a full config: a prefix when the
 * caller's struct is smaller, zeros after ours when it is larger (members of
 * a newer header that this library does not know). */
static void config_store(spectator_config_t *dst, size_t size, const spectator_config_t *src) {
  if (size <= sizeof(*src)) {
    memcpy(dst, src, size);
  } else {
    memcpy(dst, src, sizeof(*src));
    memset((char *)dst + sizeof(*src), 0, size - sizeof(*src));
  }
}

void spectator_config_init_size(spectator_config_t *cfg, size_t size) {
  if (!cfg) return;
  spectator_config_t d;
  config_defaults(&d);
  config_store(cfg, size, &d);
}

/* The 0.1.0 entry point (the header maps the name to the sized one). */
void(spectator_config_init)(spectator_config_t *cfg) {
  spectator_config_init_size(cfg, SPECTATOR__CONFIG_SIZE_0_1);
}

int spectator__config_load(spectator_config_t *out, const spectator_config_t *in, size_t size) {
  config_defaults(out);
  if (!in) return 0;
  if (size > sizeof(*out)) {
    /* Built against a newer header: its extra members are not known here.
     * spectator_config_init_size() zeroed them, so a nonzero byte is a
     * setting this library ignores. */
    const unsigned char *extra = (const unsigned char *)in + sizeof(*out);
    size_t set = 0;
    for (size_t i = 0; i < size - sizeof(*out); i++) set += extra[i] != 0;
    if (set)
      spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                     "the program was built against a newer spectator.h (a %zu-byte "
                     "spectator_config_t, %zu here): the settings this version does not know "
                     "are ignored",
                     size, sizeof(*out));
    size = sizeof(*out);
  }
  memcpy(out, in, size);
  return 0;
}

/* Trimmed copy of s into buf; returns buf, or NULL when s is NULL, empty after
 * trimming, or longer than the buffer. */
static const char *trimmed(const char *s, char *buf, size_t size) {
  if (!s) return NULL;
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (n == 0 || n >= size) return NULL;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return buf;
}

static bool parse_double(const char *s, double *out) {
  char buf[64];
  const char *t = trimmed(s, buf, sizeof(buf));
  if (!t) return false;
  char *end;
  errno = 0;
  double v = spectator__strtod(t, &end);
  if (errno || *end || !isfinite(v)) return false;
  *out = v;
  return true;
}

static bool parse_size(const char *s, size_t *out) {
  char buf[64];
  const char *t = trimmed(s, buf, sizeof(buf));
  if (!t || !isdigit((unsigned char)t[0])) return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(t, &end, 10);
  if (errno || *end || v > SIZE_MAX) return false;
  *out = (size_t)v;
  return true;
}

static void bad_env(const char *name, const char *value, const char *expected) {
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                 "%s='%.*s' is not valid (expected %s); using the default", name,
                 SPECTATOR__LOG_STR(value), expected);
}

bool spectator__parse_flag(const char *name, const char *value) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  char buf[16];
  const char *t = trimmed(value, buf, sizeof(buf));
  if (!value || (!t && value[strspn(value, " \t\r\n")] == '\0')) return false;
  for (size_t i = 0; t && i < 4; i++)
    if (strcasecmp(t, yes[i]) == 0) return true;
  for (size_t i = 0; t && i < 4; i++)
    if (strcasecmp(t, no[i]) == 0) return false;
  bad_env(name, value, "1, true, yes or 0, false, no");
  return false;
}

/* Seconds from the environment variable `name`, when set, within [min, max];
 * anything else is logged and *out keeps its default. */
static void env_seconds(const char *name, double min, double max, const char *expected,
                        double *out) {
  const char *v = getenv(name);
  double d;
  if (!v) return;
  if (parse_double(v, &d) && d >= min && d <= max)
    *out = d;
  else
    bad_env(name, v, expected);
}

/* A whole number > 0 from the environment variable `name`, as env_seconds. */
static void env_count(const char *name, size_t *out) {
  const char *v = getenv(name);
  size_t n;
  if (!v) return;
  if (parse_size(v, &n) && n > 0)
    *out = n;
  else
    bad_env(name, v, "a whole number > 0");
}

static void config_apply_env(spectator_config_t *cfg) {
  const char *v;
  if ((v = getenv("SPECTATOR_URI")) && *v) {
    if (strncasecmp(v, "http://", 7) == 0 || strncasecmp(v, "https://", 8) == 0)
      cfg->uri = v;
    else {
      /* Never log credentials: "scheme://user:password@host" shows "***@host". */
      char safe[SPECTATOR__URI_LOG_MAX];
      bad_env("SPECTATOR_URI", spectator__redact_uri(v, safe, sizeof(safe)),
              "an http:// or https:// URI");
    }
  }
  env_seconds("SPECTATOR_FREQUENCY", SPECTATOR__MIN_FREQUENCY_S, 86400,
              "seconds, from 0.01 to 86400", &cfg->frequency_s);
  env_count("SPECTATOR_BATCH_SIZE", &cfg->batch_size);
  env_seconds("SPECTATOR_TIMEOUT", SPECTATOR__MIN_TIMEOUT_S, 3600, "seconds, from 0.001 to 3600",
              &cfg->timeout_s);
  cfg->connect_timeout_s = cfg->timeout_s;
  env_count("SPECTATOR_MAX_METERS", &cfg->max_meters);
  if ((v = getenv("SPECTATOR_DISABLE_AUTO_START")))
    cfg->auto_start = !spectator__parse_flag("SPECTATOR_DISABLE_AUTO_START", v);
  if ((v = getenv("SPECTATOR_PROCESS_METRICS")))
    cfg->process_metrics = spectator__parse_flag("SPECTATOR_PROCESS_METRICS", v);
  if ((v = getenv("SPECTATOR_OUTPUT_LOCATION"))) {
    spectator__location_t loc;
    const char *why;
    if (spectator__location_parse(v, &loc, &why) == 0)
      cfg->output_location = loc.kind == SPECTATOR__OUT_AGGREGATOR ? NULL : v;
    else
      spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                     "SPECTATOR_OUTPUT_LOCATION='%.*s' is not valid: %s "
                     "(expected " SPECTATOR__LOCATION_EXPECTED
                     "); using the Atlas aggregator at SPECTATOR_URI",
                     SPECTATOR__LOG_STR(v), why);
  }
}

void spectator_config_from_env_size(spectator_config_t *cfg, size_t size) {
  if (!cfg) return;
  spectator_config_t d;
  config_defaults(&d);
  config_apply_env(&d);
  config_store(cfg, size, &d);
}

/* The 0.1.0 entry point (the header maps the name to the sized one). */
void(spectator_config_from_env)(spectator_config_t *cfg) {
  spectator_config_from_env_size(cfg, SPECTATOR__CONFIG_SIZE_0_1);
}

/* A setting below its floor is refused and its default kept: an interval of
 * nanoseconds would make the publisher spin and send nothing. */
static void floor_seconds(const char *name, double min, double dflt, double *v) {
  if (*v >= min) return;
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                 "%s=%g is below its floor of %g s: using the default %g s", name, *v, min, dflt);
  *v = dflt;
}

void spectator__config_apply_floors(spectator_config_t *cfg) {
  spectator_config_t d;
  config_defaults(&d);
  floor_seconds("frequency_s", SPECTATOR__MIN_FREQUENCY_S, d.frequency_s, &cfg->frequency_s);
  floor_seconds("timeout_s", SPECTATOR__MIN_TIMEOUT_S, d.timeout_s, &cfg->timeout_s);
  floor_seconds("connect_timeout_s", SPECTATOR__MIN_TIMEOUT_S, d.connect_timeout_s,
                &cfg->connect_timeout_s);
}

int spectator__config_validate(const spectator_config_t *cfg) {
  const char *bad = NULL;
  /* Upper bounds as for the environment: the publisher turns these into
   * nanosecond deadlines, which must not overflow int64. */
  if (!(cfg->frequency_s > 0 && cfg->frequency_s <= 86400))
    bad = "frequency_s must be > 0 and at most 86400";
  else if (cfg->batch_size == 0)
    bad = "batch_size must be > 0";
  else if (!(cfg->timeout_s > 0 && cfg->timeout_s <= 3600))
    bad = "timeout_s must be > 0 and at most 3600";
  else if (!(cfg->connect_timeout_s > 0 && cfg->connect_timeout_s <= 3600))
    bad = "connect_timeout_s must be > 0 and at most 3600";
  else if (cfg->max_meters == 0)
    bad = "max_meters must be > 0";
  else if (!(cfg->meter_ttl_s > 0) || !isfinite(cfg->meter_ttl_s) || cfg->meter_ttl_s > 9e9)
    bad = "meter_ttl_s must be > 0";
  else if (cfg->uri && strncasecmp(cfg->uri, "http://", 7) != 0 &&
           strncasecmp(cfg->uri, "https://", 8) != 0)
    bad = "uri must start with http:// or https://";
  if (!bad && cfg->common_tags) {
    size_t i = 0;
    for (; cfg->common_tags[i]; i += 2) {
      if (!cfg->common_tags[i + 1] || !cfg->common_tags[i][0] || !cfg->common_tags[i + 1][0]) {
        bad = "common_tags must be non-empty key, value pairs";
        break;
      }
    }
  }
  if (bad) {
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "invalid configuration: %s", bad);
    return SPECTATOR_EINVAL;
  }
  return 0;
}

/* The Netflix environment: first non-empty (trimmed) variable wins. */
static const struct {
  const char *tag;
  const char *vars[3];
} nf_tags[] = {
    {"nf.account", {"NETFLIX_ACCOUNT_ID", "EC2_OWNER_ID", NULL}},
    /* nf.ami (EC2_AMI_ID) is left out, as Spectator Java's commonTagsForAtlas
     * does: it is not among the keys metrics should carry. */
    {"nf.app", {"NETFLIX_APP", NULL, NULL}},
    {"nf.asg", {"NETFLIX_AUTO_SCALE_GROUP", NULL, NULL}},
    {"nf.cluster", {"NETFLIX_CLUSTER", NULL, NULL}},
    {"nf.container", {"TITUS_CONTAINER_NAME", NULL, NULL}},
    {"nf.node", {"NETFLIX_INSTANCE_ID", "TITUS_TASK_INSTANCE_ID", "EC2_INSTANCE_ID"}},
    {"nf.process", {"NETFLIX_PROCESS_NAME", NULL, NULL}},
    {"nf.region", {"NETFLIX_REGION", "EC2_REGION", NULL}},
    {"nf.shard1", {"NETFLIX_SHARD1", NULL, NULL}},
    {"nf.shard2", {"NETFLIX_SHARD2", NULL, NULL}},
    {"nf.stack", {"NETFLIX_STACK", NULL, NULL}},
    {"nf.vmtype", {"EC2_INSTANCE_TYPE", NULL, NULL}},
    {"nf.zone", {"EC2_AVAILABILITY_ZONE", NULL, NULL}},
};
#define NF_TAGS (sizeof(nf_tags) / sizeof(nf_tags[0]))

/* Malformed SPECTATOR_COMMON_TAGS entries logged one by one; the rest are
 * counted in one line. */
#define MAX_LOGGED_MALFORMED 8

/* Values longer than this are not tags anyone meant (Atlas allows 120). */
#define MAX_ENV_VALUE 1024

typedef struct {
  const char *k, *v;
  size_t klen, vlen;
} span_pair_t;

static void trim_span(const char **s, size_t *n) {
  while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
  while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

bool spectator__env_skips_common_tag(const char *key, size_t len) {
  const char *p = getenv("ATLAS_SKIP_COMMON_TAGS");
  while (p && *p) {
    const char *end = strchr(p, ',');
    const char *k = p;
    size_t klen = end ? (size_t)(end - p) : strlen(p);
    trim_span(&k, &klen);
    if (klen && klen == len && memcmp(k, key, len) == 0) return true;
    p = end ? end + 1 : NULL;
  }
  return false;
}

char **spectator__env_common_tags(void) {
  const char *extra = getenv("SPECTATOR_COMMON_TAGS");
  size_t extra_len = extra ? strlen(extra) : 0;
  size_t max_pairs = NF_TAGS + 1;
  for (size_t i = 0; i < extra_len; i++) max_pairs += extra[i] == ',';
  span_pair_t *pairs = calloc(max_pairs, sizeof(*pairs));
  if (!pairs) return NULL;

  size_t n = 0, bytes = 0;
  for (size_t t = 0; t < NF_TAGS; t++) {
    for (size_t j = 0; j < 3 && nf_tags[t].vars[j]; j++) {
      const char *v = getenv(nf_tags[t].vars[j]);
      if (!v) continue;
      /* Trim first: a limit applied before trimming would cut a long value. */
      size_t len = strlen(v);
      trim_span(&v, &len);
      if (!len) continue;
      if (len > MAX_ENV_VALUE) {
        bad_env(nf_tags[t].vars[j], v, "a value of at most 1024 characters");
        continue;
      }
      size_t klen = strlen(nf_tags[t].tag);
      if (!spectator__env_skips_common_tag(nf_tags[t].tag, klen))
        pairs[n++] = (span_pair_t){nf_tags[t].tag, v, klen, len};
      break;
    }
  }
  /* SPECTATOR_COMMON_TAGS: k=v,k2=v2; malformed entries are skipped. */
  size_t malformed = 0;
  for (const char *p = extra; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    const char *k = p, *v = eq ? eq + 1 : NULL;
    size_t klen = eq ? (size_t)(eq - p) : len, vlen = eq ? len - klen - 1 : 0;
    trim_span(&k, &klen);
    if (v) trim_span(&v, &vlen);
    if (eq && klen && vlen) {
      if (!spectator__env_skips_common_tag(k, klen)) pairs[n++] = (span_pair_t){k, v, klen, vlen};
    } else if ((eq || klen) && ++malformed <= MAX_LOGGED_MALFORMED) {
      /* blank entries ("a=1, ,b=2", "a=1, ") are skipped silently */
      spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                     "SPECTATOR_COMMON_TAGS: ignoring '%.*s' (expected key=value, comma "
                     "separated)",
                     (int)(len < SPECTATOR__LOG_MAX_STR ? len : SPECTATOR__LOG_MAX_STR), p);
    }
    p = end ? end + 1 : NULL;
  }
  if (malformed > MAX_LOGGED_MALFORMED) /* a huge bad variable must not flood the log */
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                   "SPECTATOR_COMMON_TAGS: %zu more malformed entries ignored",
                   malformed - MAX_LOGGED_MALFORMED);
  for (size_t i = 0; i < n; i++) bytes += pairs[i].klen + pairs[i].vlen + 2;

  size_t head = (2 * n + 1) * sizeof(char *);
  char **out = malloc(head + bytes);
  if (!out) {
    free(pairs);
    return NULL;
  }
  char *s = (char *)out + head;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = s;
    memcpy(s, pairs[i].k, pairs[i].klen);
    s[pairs[i].klen] = '\0';
    s += pairs[i].klen + 1;
    out[2 * i + 1] = s;
    memcpy(s, pairs[i].v, pairs[i].vlen);
    s[pairs[i].vlen] = '\0';
    s += pairs[i].vlen + 1;
  }
  out[2 * n] = NULL;
  free(pairs);
  return out;
}
