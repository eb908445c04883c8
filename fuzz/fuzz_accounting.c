/*
 * fuzz_accounting: how a request's measurements are counted from whatever a
 * server answers (spectator__http_account): any status, any body, cut or not,
 * or no answer at all.
 *
 * Input: byte 0 = flags (bit 0: no response, bit 1: the body was cut), bytes
 * 1-2 = the status (0..999), bytes 3-4 = n, the measurements of the request;
 * the rest is the body (an exact-size copy, not NUL-terminated).
 *
 * Checks: the four counts add up to n; 200 with a response sends all; no
 * response, no status or 500 and above drop all as http-error; a cut body
 * drops all as other; below 500, a body that is a validation answer (checked
 * with cJSON) drops min(errorCount, n) as validation and sends the rest, any
 * other body drops all as other.
 */
#include <cjson/cJSON.h>
#include <math.h>

#include "fuzz_util.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5) return 0;
  bool no_response = data[0] & 1, cut = data[0] & 2;
  long status = (long)((data[1] << 8 | data[2]) % 1000);
  size_t n = (size_t)(data[3] << 8 | data[4]);
  size_t len = size - 5;
  char *body = malloc(len ? len : 1);
  FUZZ_CHECK(body);
  if (len) memcpy(body, data + 5, len);

  spectator__http_response_t res;
  memset(&res, 0, sizeof(res));
  res.status = no_response ? 0 : status;
  res.error = no_response ? "timeout" : NULL;
  res.reason = "";
  res.body = body;
  res.body_len = len;
  res.body_truncated = cut;
  spectator__outcome_t out;
  spectator__http_account(&res, no_response ? SPECTATOR_EHTTP : 0, n, &out);
  FUZZ_CHECK(out.sent + out.validation + out.other + out.http_error == n);

  if (no_response || status <= 0 || status >= 500) {
    FUZZ_CHECK(out.http_error == n);
  } else if (status == 200) {
    FUZZ_CHECK(out.sent == n);
  } else if (cut) {
    FUZZ_CHECK(out.other == n);
  } else {
    cJSON *root = len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *count = root ? cJSON_GetObjectItemCaseSensitive(root, "errorCount") : NULL;
    bool validation = root && cJSON_IsObject(root) && cJSON_IsNumber(count) &&
                      count->valuedouble >= 0 && isfinite(count->valuedouble);
    if (validation) {
      size_t errors = count->valuedouble >= (double)n ? n : (size_t)count->valuedouble;
      FUZZ_CHECK(out.validation == errors && out.sent == n - errors);
    } else {
      FUZZ_CHECK(out.other == n);
    }
    cJSON_Delete(root);
  }
  spectator__aggregator_response_free(&out.answer);
  free(body);
  return 0;
}
