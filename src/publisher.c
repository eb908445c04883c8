/* Placeholder until the publisher lands (issue 3). */
#include "internal.h"

int spectator__publisher_start(spectator_registry_t *reg) {
  (void)reg;
  return SPECTATOR_ESTATE;
}
void spectator__publisher_stop(spectator_registry_t *reg) { (void)reg; }
void spectator__publisher_free(spectator_registry_t *reg) { (void)reg; }
