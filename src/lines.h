/*
 * Private: spectatord's line protocol (lines.c): a meter's value as a line,
 * lines joined into datagrams.
 *
 *   <type>[,<option>]:<name>[,<key>=<value>]*:<value>
 *
 * type is the meter type's symbol (meter.h: line_type), the option a gauge's
 * TTL in seconds. Every character of the name, the keys and the values outside
 * -._A-Za-z0-9~^ becomes '_' (sanitize.h): the protocol has no escaping. Values
 * are the shortest text that reads back to the same double (numfmt.h); a
 * duration is seconds. Lines are joined by '\n' into datagrams of at most
 * SPECTATOR__DATAGRAM_MAX bytes; a line is never split, and a line longer
 * than a datagram is dropped and counted.
 */
#ifndef SPECTATOR_LINES_H
#define SPECTATOR_LINES_H

#include "meter.h"
#include "records.h"

/* The most bytes of a datagram: the largest UDP payload over IPv4, which also
 * fits spectatord's receive buffer (65536 bytes, one of them for its NUL). */
#define SPECTATOR__DATAGRAM_MAX 65507

/* A datagram: lines joined by '\n' (no final '\n'; data has room for one). */
typedef struct spectator__datagram {
  struct spectator__datagram *next;
  size_t len;    /* bytes of data */
  size_t nlines; /* lines in it */
  char data[SPECTATOR__DATAGRAM_MAX + 1];
} spectator__datagram_t;

/* Lines being written: the datagram being filled and the full ones, oldest
 * first, waiting to be sent. One writer at a time (the caller serializes).
 * Zeroed memory plus the common tags is a valid empty one. */
typedef struct {
  spectator__datagram_t *cur;
  spectator__datagram_t *ready, **ready_tail;
  size_t ready_count;
  size_t max_ready;             /* datagrams kept waiting at most; 0: no limit */
  spectator__datagram_t *spare; /* sent datagrams, for reuse */
  const char *const *common;    /* tags on every line: raw key, sanitized key, sanitized
                                   value, ...; NULL-terminated; borrowed */
  char *scratch;                /* a line that may be longer than a datagram */
  size_t scratch_cap;
  /* Lines that could not be written, since the last spectator__lines_take_drops. */
  size_t too_long; /* longer than a datagram */
  size_t no_room;  /* max_ready datagrams already waiting, or memory ran out */
} spectator__lines_t;

/* The value of a line, as text: a double in its shortest exact form ("NaN"
 * for NaN); or a duration in nanoseconds as seconds, the double whose product
 * with 1e9 truncates to the nanoseconds (spectatord converts seconds so; exact
 * below 2^22 seconds). out holds SPECTATOR__MAX_NUMBER_LEN bytes; returns the
 * length. */
size_t spectator__line_value(char *out, double v);
size_t spectator__line_seconds(char *out, int64_t nanos);

/* Write the line of one value; value is its text (vlen bytes). A line longer
 * than a datagram is counted in too_long; one that finds no room in
 * no_room. Returns true when it was written. */
bool spectator__lines_add(spectator__lines_t *lb, char type, uint32_t opt, const spectator_id_t *id,
                          const char *value, size_t vlen);
/* The line of a snapshot record (a meter measured at each publish): the
 * symbol of the record's meter type, its option and its value. Records of a
 * type without lines are skipped (false). */
bool spectator__lines_add_record(spectator__lines_t *lb, const spectator__record_t *r);
/* The line of a sample taken from the sample rings (samples.h); marks the
 * meter sampled (its snapshot then counts it as active). */
bool spectator__lines_add_sample(spectator__lines_t *lb, const spectator__meter_t *m,
                                 uint64_t value);

/* The datagram being filled joins the ready ones. */
void spectator__lines_flush(spectator__lines_t *lb);
/* Take the ready datagrams (oldest first, linked by next); NULL when none. */
spectator__datagram_t *spectator__lines_take(spectator__lines_t *lb);
/* Give sent datagrams back for reuse (at most a few are kept). */
void spectator__lines_recycle(spectator__lines_t *lb, spectator__datagram_t *list);
/* Free everything it holds (not the common tags). */
void spectator__lines_free(spectator__lines_t *lb);
/* Forget everything without freeing (a forked child: the datagrams stay
 * allocated, as the parent left them). The common tags and max_ready stay. */
void spectator__lines_postfork_child(spectator__lines_t *lb);

#endif
