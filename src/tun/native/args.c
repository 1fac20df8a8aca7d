// Argument checking. Every check happens before any syscall: a bad argument
// never reaches the kernel, and no pointer is formed outside the caller's
// buffers.
#include "flannel_tun.h"

#include <math.h>

bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_failed(env, napi_generic_failure);
    return false;
  }
  if (argc < n) {
    throw_type(env, "expected %zu arguments, got %zu", n, argc);
    return false;
  }
  return true;
}

bool get_args_opt(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_failed(env, napi_generic_failure);
    return false;
  }
  if (argc < min) {
    throw_type(env, "expected at least %zu arguments, got %zu", min, argc);
    return false;
  }
  return true; // N-API filled argv[argc..max-1] with undefined
}

bool prop_bool(napi_env env, napi_value obj, const char *name, bool dflt, bool *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) {
    napi_failed(env, napi_generic_failure);
    return false;
  }
  if (t == napi_undefined) {
    *out = dflt;
    return true;
  }
  if (t != napi_boolean) {
    throw_type(env, "%s must be a boolean", name);
    return false;
  }
  napi_get_value_bool(env, v, out);
  return true;
}

bool arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_type(env, "%s must be a number", what);
    return false;
  }
  napi_get_value_double(env, v, &d);
  if (!isfinite(d) || floor(d) != d || d < (double)min || d > (double)max) {
    throw_range(env, "%s must be an integer in [%lld, %lld], got %g", what, (long long)min, (long long)max, d);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

bool arg_fd(napi_env env, napi_value v, int *fd) {
  int64_t x;
  if (!arg_int(env, v, "fd", 0, INT32_MAX, &x)) return false;
  *fd = (int)x;
  return true;
}

bool arg_bool(napi_env env, napi_value v, const char *what, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) {
    throw_type(env, "%s must be a boolean", what);
    return false;
  }
  napi_get_value_bool(env, v, out);
  return true;
}

bool arg_f64s(napi_env env, napi_value v, const char *what, size_t min_len, double **out, size_t *len) {
  bool ok = false;
  napi_typedarray_type type;
  void *p;
  if (napi_is_typedarray(env, v, &ok) != napi_ok || !ok ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_float64_array || *len < min_len) {
    throw_type(env, "%s must be a Float64Array of >= %zu elements", what, min_len);
    return false;
  }
  *out = p;
  return true;
}

bool arg_batch(napi_env env, napi_value data, napi_value desc, batch_s *b) {
  bool ok = false;
  napi_typedarray_type type;
  size_t len;
  void *p;

  if (napi_is_buffer(env, data, &ok) != napi_ok || !ok) {
    throw_type(env, "data must be a Buffer");
    return false;
  }
  napi_get_buffer_info(env, data, &p, &b->data_len);
  b->data = p;

  if (napi_is_typedarray(env, desc, &ok) != napi_ok || !ok ||
      napi_get_typedarray_info(env, desc, &type, &len, &p, NULL, NULL) != napi_ok ||
      type != napi_int32_array) {
    throw_type(env, "desc must be an Int32Array");
    return false;
  }
  b->desc = p;
  b->rows = len / DESC_WORDS;
  return true;
}

bool get_write_args(napi_env env, napi_callback_info info, int *fd, batch_s *b, int64_t *count) {
  napi_value argv[4];
  return get_args(env, info, 4, argv) && arg_fd(env, argv[0], fd) && arg_batch(env, argv[1], argv[2], b) &&
         arg_int(env, argv[3], "count", 0, INT32_MAX, count);
}

bool check_slots(napi_env env, const batch_s *b, int64_t max, int64_t slot) {
  // 64-bit products: max and slot are each < 2^31.
  if ((uint64_t)max > b->rows) {
    throw_range(env, "max %lld exceeds the %zu descriptors in desc", (long long)max, b->rows);
    return false;
  }
  if ((uint64_t)(max * slot) > b->data_len) {
    throw_range(env, "%lld slots of %lld bytes exceed data's %zu bytes", (long long)max, (long long)slot, b->data_len);
    return false;
  }
  if (max > 0 && (max - 1) * slot > INT32_MAX) {
    throw_range(env, "slot offsets exceed int32 (D_OFF)");
    return false;
  }
  return true;
}

bool check_rows(napi_env env, const batch_s *b, int64_t count) {
  if ((uint64_t)count > b->rows) {
    throw_range(env, "count %lld exceeds the %zu descriptors in desc", (long long)count, b->rows);
    return false;
  }
  for (int64_t i = 0; i < count; i++) {
    const int32_t *d = b->desc + i * DESC_WORDS;
    if (d[D_LEN] <= 0) continue; // not sent: its offset does not matter
    if (d[D_OFF] < 0 || (uint64_t)d[D_OFF] + (uint64_t)d[D_LEN] > b->data_len) {
      throw_range(env, "descriptor %lld (offset %d, length %d) is outside data's %zu bytes",
                  (long long)i, d[D_OFF], d[D_LEN], b->data_len);
      return false;
    }
  }
  return true;
}
