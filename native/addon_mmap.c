/*
 * N-API glue for zero-copy model loading: mmapRanges(path, offsets, lengths) maps a whole file
 * once (private, copy-on-write: the file never changes) and returns one external ArrayBuffer per
 * byte range, each a window into the mapping. Node caps a single external ArrayBuffer at 4 GiB,
 * so a 13 GB model cannot be one buffer; its tensors (each far below that) can. The mapping is
 * released when the last window is garbage-collected. Ranges are checked against the file's size
 * (a range past the end would fault on access). The kernel is asked to read the file ahead
 * (MADV_WILLNEED) without waiting for it. No kernel code here; mmapFile (addon.c) maps a small
 * file as one buffer.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAIL(...) do { char m_[4400]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_error(env, NULL, m_); goto fail; } while (0)

typedef struct mapping { void *base; size_t size; _Atomic long refs; struct mapping *prev, *next; } mapping;

/* the live mappings, for mmap_file_pages (created and released on the JS thread only) */
static mapping *g_live;

static void unlink_mapping(mapping *m) {
  if (m->prev) m->prev->next = m->next; else if (g_live == m) g_live = m->next;
  if (m->next) m->next->prev = m->prev;
  m->prev = m->next = NULL;
}

static void release(mapping *m) {
  if (atomic_fetch_sub(&m->refs, 1) == 1) {
    unlink_mapping(m);
    munmap(m->base, m->size);
    free(m);
  }
}

/*
 * Whether [p, p + n) lies inside a file mapping made by mmapRanges. Such bytes can be dropped
 * from memory (MADV_DONTNEED) after the engine copied them elsewhere: the mapping is private and
 * never written, so a later read faults the file's bytes back in.
 */
int mmap_file_pages(const void *p, size_t n) {
  const uint8_t *a = p;
  for (const mapping *m = g_live; m; m = m->next)
    if (m->base && a >= (const uint8_t *)m->base && a + n <= (const uint8_t *)m->base + m->size) return 1;
  return 0;
}

static void window_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)data;
  release(hint);
}

static int f64_array(napi_env env, napi_value v, const double **p, size_t *n) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, n, &data, &ab, &off) != napi_ok || type != napi_float64_array) return 0;
  *p = data;
  return 1;
}

static napi_value js_mmap_ranges(napi_env env, napi_callback_info info) {
  napi_value argv[3], arr = NULL;
  size_t argc = 3, len;
  char path[4096];
  const double *offs, *lens;
  size_t n, n2;
  mapping *m = NULL;
  int fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok)
    FAIL("mmapRanges: expected (path, offsets: Float64Array, lengths: Float64Array)");
  if (len >= sizeof path - 1) FAIL("mmapRanges: path is longer than %zu bytes", sizeof path - 2);
  if (!f64_array(env, argv[1], &offs, &n) || !f64_array(env, argv[2], &lens, &n2) || n != n2)
    FAIL("mmapRanges %s: offsets and lengths must be Float64Arrays of the same length", path);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) FAIL("mmapRanges %s: cannot open (%s)", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) FAIL("mmapRanges %s: cannot stat (%s)", path, strerror(errno));
  const double size = (double)st.st_size;
  for (size_t i = 0; i < n; i++)
    if (!(offs[i] >= 0 && lens[i] >= 0 && offs[i] == (double)(uint64_t)offs[i] && lens[i] == (double)(uint64_t)lens[i] &&
          offs[i] + lens[i] <= size))
      FAIL("mmapRanges %s: range %zu (offset %.0f, %.0f bytes) is not inside the %.0f-byte file", path, i, offs[i], lens[i], size);
  m = calloc(1, sizeof *m);
  if (!m) FAIL("mmapRanges %s: out of memory", path);
  if (st.st_size > 0) {
    m->size = (size_t)st.st_size;
    m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m->base == MAP_FAILED) { m->base = NULL; FAIL("mmapRanges %s: mmap of %zu bytes failed (%s)", path, m->size, strerror(errno)); }
    madvise(m->base, m->size, MADV_WILLNEED); /* start reading ahead now; a hint, failure is harmless */
  }
  close(fd);
  fd = -1;
  atomic_store(&m->refs, 1); /* held by this call until every window exists */
  if (m->base) { m->next = g_live; if (g_live) g_live->prev = m; g_live = m; }
  if (napi_create_array_with_length(env, n, &arr) != napi_ok) FAIL("mmapRanges %s: cannot create the result array", path);
  for (size_t i = 0; i < n; i++) {
    napi_value ab;
    if (lens[i] == 0 || !m->base) {
      void *unused;
      if (napi_create_arraybuffer(env, 0, &unused, &ab) != napi_ok) FAIL("mmapRanges %s: cannot create a buffer", path);
    } else {
      atomic_fetch_add(&m->refs, 1);
      if (napi_create_external_arraybuffer(env, (uint8_t *)m->base + (size_t)offs[i], (size_t)lens[i], window_finalize, m, &ab) != napi_ok) {
        atomic_fetch_sub(&m->refs, 1);
        FAIL("mmapRanges %s: this Node.js does not allow an external ArrayBuffer of %.0f bytes", path, lens[i]);
      }
    }
    napi_set_element(env, arr, (uint32_t)i, ab);
  }
  release(m); /* the windows keep it alive */
  return arr;
fail:
  if (fd >= 0) close(fd);
  if (m) {
    if (atomic_load(&m->refs) <= 1) { unlink_mapping(m); if (m->base) munmap(m->base, m->size); free(m); }
    else release(m); /* windows already handed out keep the mapping */
  }
  return NULL;
}

void mmap_exports(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "mmapRanges", NAPI_AUTO_LENGTH, js_mmap_ranges, NULL, &fn);
  napi_set_named_property(env, exports, "mmapRanges", fn);
}
