/*
 * spectatord's line protocol: lines of meters' values, joined into datagrams
 * (lines.h has the format).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "lines.h"
#include "numfmt.h"
#include "sanitize.h"

/* Spare datagrams kept for reuse. */
#define MAX_SPARE 4

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

size_t spectator__line_value(char *out, double v) {
  if (isnan(v)) {
    memcpy(out, "NaN", 3);
    return 3;
  }
  if (isinf(v)) { /* never produced by a meter; written as strtod reads it */
    memcpy(out, v > 0 ? "Infinity" : "-Infinity", v > 0 ? 8 : 9);
    return v > 0 ? 8 : 9;
  }
  return spectator__put_number(out, v);
}

/* The next double above a positive finite one: its bits plus one. (libm's
 * nextafter would make libm a dependency for this one call.) */
static double next_up(double s) {
  uint64_t bits;
  memcpy(&bits, &s, sizeof(bits));
  bits++;
  memcpy(&s, &bits, sizeof(s));
  return s;
}

size_t spectator__line_seconds(char *out, int64_t nanos) {
  double s = (double)nanos / 1e9;
  /* spectatord reads the seconds and keeps (int64_t)(s * 1e9): when the
   * nearest double to the seconds falls short of that, the next one up is
   * as good a reading of the duration and gives the nanoseconds back. (Every
   * duration below 2^22 s, 48 days, has such a double; longer ones may be a
   * nanosecond off, and from 2^53 ns on a double cannot hold them anyway.) */
  if (nanos > 0 && nanos < (int64_t)SPECTATOR__TWO_POW_53 && (int64_t)(s * 1e9) < nanos) {
    double up = next_up(s);
    if ((int64_t)(up * 1e9) <= nanos) s = up;
  }
  return spectator__put_number(out, s);
}

/* ------------------------------------------------------------------------ */
/* Datagrams                                                                 */
/* ------------------------------------------------------------------------ */

static spectator__datagram_t *dgram_get(spectator__lines_t *lb) {
  spectator__datagram_t *d = lb->spare;
  if (d) {
    lb->spare = d->next;
  } else {
    d = malloc(sizeof(*d));
    if (!d) return NULL;
  }
  d->next = NULL;
  d->len = 0;
  d->nlines = 0;
  return d;
}

void spectator__lines_flush(spectator__lines_t *lb) {
  spectator__datagram_t *d = lb->cur;
  if (!d || d->nlines == 0) return;
  lb->cur = NULL;
  if (!lb->ready_tail) lb->ready_tail = &lb->ready;
  *lb->ready_tail = d;
  lb->ready_tail = &d->next;
  lb->ready_count++;
}

spectator__datagram_t *spectator__lines_take(spectator__lines_t *lb) {
  spectator__datagram_t *list = lb->ready;
  lb->ready = NULL;
  lb->ready_tail = &lb->ready;
  lb->ready_count = 0;
  return list;
}

void spectator__lines_recycle(spectator__lines_t *lb, spectator__datagram_t *list) {
  size_t kept = 0;
  for (spectator__datagram_t *d = lb->spare; d; d = d->next) kept++;
  while (list) {
    spectator__datagram_t *next = list->next;
    if (kept < MAX_SPARE) {
      list->next = lb->spare;
      lb->spare = list;
      kept++;
    } else {
      free(list);
    }
    list = next;
  }
}

static void free_list(spectator__datagram_t *d) {
  while (d) {
    spectator__datagram_t *next = d->next;
    free(d);
    d = next;
  }
}

void spectator__lines_free(spectator__lines_t *lb) {
  free(lb->cur);
  free_list(lb->ready);
  free_list(lb->spare);
  free(lb->scratch);
  lb->cur = lb->ready = lb->spare = NULL;
  lb->ready_tail = &lb->ready;
  lb->ready_count = 0;
  lb->scratch = NULL;
  lb->scratch_cap = 0;
}

void spectator__lines_postfork_child(spectator__lines_t *lb) {
  /* Everything pending was the parent's: it becomes spare memory, unsent. */
  spectator__datagram_t *list = lb->ready;
  if (lb->cur) {
    lb->cur->next = list;
    list = lb->cur;
  }
  while (list) {
    spectator__datagram_t *next = list->next;
    list->next = lb->spare;
    lb->spare = list;
    list = next;
  }
  lb->cur = lb->ready = NULL;
  lb->ready_tail = &lb->ready;
  lb->ready_count = 0;
  lb->too_long = lb->no_room = 0;
}

/* ------------------------------------------------------------------------ */
/* Lines                                                                     */
/* ------------------------------------------------------------------------ */

/* Bytes of the line at most (sanitizing never makes text longer), not
 * counting the '\n' before it. */
/* One line's parts. */
typedef struct {
  char type;
  uint32_t opt;
  const spectator_id_t *id;
  const char *stat; /* a statistic tag to add (value), or NULL */
  const char *value;
  size_t vlen;
} line_t;

/* Bytes of the line at most (sanitizing never makes text longer), not
 * counting the '\n' before it. */
static size_t line_bound(const spectator__lines_t *lb, const line_t *l) {
  size_t n = 1 + (l->opt ? 1 + 10 : 0) + 1 + strlen(l->id->name) + 1 + l->vlen;
  for (size_t i = 0; lb->common && lb->common[i]; i += 3)
    n += 2 + strlen(lb->common[i + 1]) + strlen(lb->common[i + 2]);
  for (size_t i = 0; i < l->id->ntags; i++)
    n += 2 + strlen(l->id->tags[2 * i]) + strlen(l->id->tags[2 * i + 1]);
  if (l->stat) n += 2 + strlen("statistic") + strlen(l->stat);
  return n;
}

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

/* Write the line at p, which has room for line_bound() + 1 bytes; returns its
 * length. */
static size_t line_write(const spectator__lines_t *lb, char *p, const line_t *l) {
  char *start = p;
  const spectator_id_t *id = l->id;
  *p++ = l->type;
  if (l->opt) {
    *p++ = ',';
    p += spectator__put_u64(p, l->opt);
  }
  *p++ = ':';
  p += spectator__sanitize(id->name, p);
  /* The common tags first, unless the id has the key (its own value wins). */
  for (size_t i = 0; lb->common && lb->common[i]; i += 3) {
    if (spectator_id_tag(id, lb->common[i])) continue;
    *p++ = ',';
    p = put(p, lb->common[i + 1], strlen(lb->common[i + 1]));
    *p++ = '=';
    p = put(p, lb->common[i + 2], strlen(lb->common[i + 2]));
  }
  for (size_t i = 0; i < id->ntags; i++) {
    *p++ = ',';
    p += spectator__sanitize(id->tags[2 * i], p);
    *p++ = '=';
    p += spectator__sanitize(id->tags[2 * i + 1], p);
  }
  if (l->stat) {
    p = put(p, ",statistic=", 11);
    p = put(p, l->stat, strlen(l->stat));
  }
  *p++ = ':';
  p = put(p, l->value, l->vlen);
  return (size_t)(p - start);
}

static bool add_line(spectator__lines_t *lb, const line_t *l) {
  size_t bound = line_bound(lb, l);
  const char *text = NULL;
  if (bound > SPECTATOR__DATAGRAM_MAX) {
    /* Maybe too long: sanitizing may shorten it, so write it aside first. */
    if (lb->scratch_cap < bound + 1) {
      char *s = realloc(lb->scratch, bound + 1);
      if (!s) {
        lb->no_room++;
        return false;
      }
      lb->scratch = s;
      lb->scratch_cap = bound + 1;
    }
    bound = line_write(lb, lb->scratch, l);
    if (bound > SPECTATOR__DATAGRAM_MAX) {
      lb->too_long++;
      return false;
    }
    text = lb->scratch;
  }
  spectator__datagram_t *d = lb->cur;
  if (d && d->nlines && d->len + 1 + bound > SPECTATOR__DATAGRAM_MAX) { /* full */
    if (lb->max_ready && lb->ready_count >= lb->max_ready) {
      lb->no_room++;
      return false;
    }
    spectator__lines_flush(lb);
    d = NULL;
  }
  if (!d && !(d = lb->cur = dgram_get(lb))) {
    lb->no_room++;
    return false;
  }
  if (d->nlines) d->data[d->len++] = '\n';
  if (text)
    memcpy(d->data + d->len, text, bound);
  else
    bound = line_write(lb, d->data + d->len, l);
  d->len += bound;
  d->nlines++;
  return true;
}

bool spectator__lines_add(spectator__lines_t *lb, char type, uint32_t opt, const spectator_id_t *id,
                          const char *value, size_t vlen) {
  line_t l = {type, opt, id, NULL, value, vlen};
  return add_line(lb, &l);
}

bool spectator__lines_add_record(spectator__lines_t *lb, const spectator__record_t *r) {
  unsigned t = r->type;
  if (t >= SPECTATOR__METER_TYPES || !spectator__meter_types[t]->line_type) return false;
  uint8_t kind = spectator__meter_types[t]->line_kind;
  if (kind != SPECTATOR__LINES_MEASURED && kind != SPECTATOR__LINES_MEASURED_STATS &&
      kind != SPECTATOR__LINES_MEASURED_U64)
    return false;
  char v[SPECTATOR__MAX_NUMBER_LEN + 8];
  size_t n =
      kind == SPECTATOR__LINES_MEASURED_U64
          ? (size_t)snprintf(v, sizeof(v), "%llu", (unsigned long long)spectator__d2b(r->value))
          : spectator__line_value(v, r->value);
  /* A type with several statistics of one id keeps them apart with the
   * statistic tag (an id's own statistic tag wins). */
  const char *stat = NULL;
  if (kind == SPECTATOR__LINES_MEASURED_STATS && r->stat != SPECTATOR__STAT_NONE &&
      r->stat < SPECTATOR__STAT_COUNT_OF_NAMES && !spectator_id_tag(r->id, "statistic"))
    stat = spectator__stat_names[r->stat];
  line_t l = {spectator__meter_types[t]->line_type, r->line_opt, r->id, stat, v, n};
  return add_line(lb, &l);
}

bool spectator__lines_add_sample(spectator__lines_t *lb, const spectator__meter_t *m,
                                 uint64_t value) {
  const spectator__meter_type_t *mt = spectator__meter_types[m->type];
  char v[SPECTATOR__MAX_NUMBER_LEN + 8];
  size_t n = mt->line_kind == SPECTATOR__LINES_SAMPLED_NS
                 ? spectator__line_seconds(v, (int64_t)value)
                 : spectator__line_value(v, spectator__b2d(value));
  spectator__meter_t *mm = (spectator__meter_t *)m;
  if (!atomic_load_explicit(&mm->sampled, memory_order_relaxed))
    atomic_store_explicit(&mm->sampled, 1, memory_order_relaxed);
  return spectator__lines_add(lb, mt->line_type, 0, m->id, v, n);
}
