/*
 * fuzz_response: spectator__parse_aggregator_response() on arbitrary bytes
 * (the body of a 202 or 400 answer, which a broken or hostile server controls).
 *
 * Checks: no crash or leak on any input, the input buffer is never read past
 * its length (it is not NUL-terminated here), a success means a JSON object
 * with a numeric errorCount >= 0 (cross-checked with cJSON), at most
 * SPECTATOR__MAX_MESSAGES messages, each a NUL-terminated string, and a failure
 * leaves the output empty.
 */
#include <cjson/cJSON.h>
#include <math.h>

#include "fuzz_util.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size copy, so ASan sees any read past the end. */
  char *body = malloc(size ? size : 1);
  FUZZ_CHECK(body);
  if (size) memcpy(body, data, size);

  spectator__aggregator_response_t ar;
  memset(&ar, 0xab, sizeof(ar));
  int rc = spectator__parse_aggregator_response(body, size, &ar);

  cJSON *root = size ? cJSON_ParseWithLength(body, size) : NULL;
  const cJSON *count = root ? cJSON_GetObjectItemCaseSensitive(root, "errorCount") : NULL;
  bool expect_ok = root && cJSON_IsObject(root) && cJSON_IsNumber(count) &&
                   count->valuedouble >= 0 && isfinite(count->valuedouble);
  FUZZ_CHECK((rc == 0) == expect_ok);
  if (rc == 0) {
    FUZZ_CHECK(ar.nmessages <= SPECTATOR__MAX_MESSAGES);
    FUZZ_CHECK((double)ar.error_count <= count->valuedouble + 1);
    for (size_t i = 0; i < ar.nmessages; i++)
      FUZZ_CHECK(ar.messages[i] && strlen(ar.messages[i]) < size);
  } else {
    FUZZ_CHECK(ar.nmessages == 0 && ar.messages == NULL && ar.error_count == 0);
  }
  spectator__aggregator_response_free(&ar);
  FUZZ_CHECK(ar.nmessages == 0 && ar.messages == NULL);
  cJSON_Delete(root);
  free(body);
  return 0;
}
