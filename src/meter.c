/*
 * The descriptor of every meter type, indexed by spectator__type_t: one
 * table, generated from the one list of types in meter.h, for the registry
 * that dispatches through it and for the layers above that read a type's
 * name, line symbol or one-shot form.
 */
#include "meter.h"

const spectator__meter_type_t *const spectator__meter_types[SPECTATOR__METER_TYPES] = {
#define TYPE_ENTRY(name, stem, lookup) [SPECTATOR__##name] = &spectator__##stem##_type,
    SPECTATOR__METER_TYPE_MAP(TYPE_ENTRY)
#undef TYPE_ENTRY
};
