/* Event-driven synaptic products for binary (spike) inputs.
 *
 * A spike matrix S (rows x k, entries exactly 0 or 1) is turned once into a compressed row
 * list of its active inputs; the products then touch only the weights of those inputs:
 *   forward      y[r, :]   = bias + sum of wt[c, :] over the active inputs c of row r
 *   weight grad  gwt[c, :] = sum of g[r, :] over the rows r in which input c is active
 * (wt = W^T and gwt = dW^T are k x n), so the work scales with the number of spikes, not
 * with rows * k. Columns are processed in tiles of MAX_VECS vectors (then 1 vector, then 1 column) kept in vector
 * registers, so a tile of wt or gwt stays in cache while every row streams past it.
 * Tiles are shared out between `threads` OpenMP threads (torch's own pool when torch's
 * libgomp is loaded, as on Linux wheels), and no two threads write the same memory. No
 * allocation, no global state. GCC/Clang vector extensions compile to whatever SIMD the
 * machine has; without OpenMP the pragmas are ignored and everything runs on one thread.
 */
#include <stdint.h>

/* One vector = one register of the machine's widest SIMD: wider vectors are split by the
 * compiler into several registers, and a tile then needs more registers than exist (on AVX2,
 * 64-byte vectors made the event-driven products slower than dense ones: results pages
 * lif_speed_full_1thread, before, and lif_speed_avx2_1thread, after). */
#if defined(__AVX512F__)
#define VEC_BYTES 64
#elif defined(__AVX__)
#define VEC_BYTES 32
#else
#define VEC_BYTES 16
#endif
typedef float vec __attribute__((vector_size(VEC_BYTES)));
typedef float vec_unaligned __attribute__((vector_size(VEC_BYTES), aligned(4)));
#define LANES (VEC_BYTES / 4)
/* A forward tile holds 2 x MAX_VECS accumulators: 16 of the 32 registers of AVX-512 and NEON,
 * and all 16 of AVX2's, whose adds read unaligned memory directly; SSE's adds cannot, so each load
 * needs a register of its own and 16 accumulators would spill. */
#if VEC_BYTES == 16 && defined(__x86_64__)
#define MAX_VECS 4
#else
#define MAX_VECS 8
#endif
#define TILE (LANES * MAX_VECS)

static inline vec load(const float *p) { return *(const vec_unaligned *)p; }
static inline void store(float *p, vec v) { *(vec_unaligned *)p = v; }

/* The vector width this build uses (the Python side picks its density limit from it). */
int vector_bytes(void) { return VEC_BYTES; }

/* Column tiles [t * TILE, tile_end(t, n)): the unit of work one thread takes. */
static inline int64_t tile_count(int64_t n) { return (n + TILE - 1) / TILE; }
static inline int64_t tile_end(int64_t t, int64_t n) { return (t + 1) * TILE < n ? (t + 1) * TILE : n; }

/* Per-row active counts as prefix sums into row_ptr[0..rows]. Returns the number of
 * active entries, or -1 if some entry is neither 0 nor 1 (the input is not spikes). */
int64_t spike_rows(const float *s, int64_t rows, int64_t k, int64_t *row_ptr, int threads) {
    int bad = 0;
    row_ptr[0] = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(|:bad)
    for (int64_t r = 0; r < rows; ++r) {
        const float *sr = s + r * k;
        int64_t count = 0;
        for (int64_t i = 0; i < k; ++i) {
            float v = sr[i];
            count += (v == 1.0f);
            bad |= (v != 0.0f) & (v != 1.0f);
        }
        row_ptr[r + 1] = count;
    }
    for (int64_t r = 0; r < rows; ++r) row_ptr[r + 1] += row_ptr[r];
    return bad ? -1 : row_ptr[rows];
}

/* Indices of the active inputs, row after row (row_ptr from spike_rows). */
void spike_columns(const float *s, int64_t rows, int64_t k, const int64_t *row_ptr, int32_t *cols, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float *sr = s + r * k;
        int32_t *out = cols + row_ptr[r], spare;
        int64_t m = 0, count = row_ptr[r + 1] - row_ptr[r];
        for (int64_t i = 0; i < k; ++i) {  /* branch-free compaction; never writes past the row */
            *(m < count ? out + m : &spare) = (int32_t)i;
            m += (sr[i] != 0.0f);
        }
    }
}

/* One tile of nv vectors starting at column j0. Two accumulator sets halve the add chain. */
static inline __attribute__((always_inline)) void forward_tile(
        const int64_t *row_ptr, const int32_t *cols, int64_t rows, const float *wt,
        const float *bias, float *y, int64_t n, int64_t j0, const int nv) {
    for (int64_t r = 0; r < rows; ++r) {
        vec even[MAX_VECS], odd[MAX_VECS];
        for (int v = 0; v < nv; ++v) {
            even[v] = bias ? load(bias + j0 + v * LANES) : (vec){0};
            odd[v] = (vec){0};
        }
        int64_t a = row_ptr[r], end = row_ptr[r + 1];
        for (; a + 1 < end; a += 2) {
            const float *w0 = wt + (int64_t)cols[a] * n + j0, *w1 = wt + (int64_t)cols[a + 1] * n + j0;
            for (int v = 0; v < nv; ++v) {
                even[v] += load(w0 + v * LANES);
                odd[v] += load(w1 + v * LANES);
            }
        }
        if (a < end) {
            const float *w0 = wt + (int64_t)cols[a] * n + j0;
            for (int v = 0; v < nv; ++v) even[v] += load(w0 + v * LANES);
        }
        for (int v = 0; v < nv; ++v) store(y + r * n + j0 + v * LANES, even[v] + odd[v]);
    }
}

/* Columns [j0, j1) of y: whole tiles, one-vector tiles, then single columns. */
static void forward_columns(const int64_t *row_ptr, const int32_t *cols, int64_t rows, const float *wt,
                            const float *bias, float *y, int64_t n, int64_t j0, int64_t j1) {
    int64_t j = j0;
    for (; j + TILE <= j1; j += TILE) forward_tile(row_ptr, cols, rows, wt, bias, y, n, j, MAX_VECS);
    for (; j + LANES <= j1; j += LANES) forward_tile(row_ptr, cols, rows, wt, bias, y, n, j, 1);
    for (; j < j1; ++j)
        for (int64_t r = 0; r < rows; ++r) {
            float acc = bias ? bias[j] : 0.0f;
            for (int64_t a = row_ptr[r]; a < row_ptr[r + 1]; ++a) acc += wt[(int64_t)cols[a] * n + j];
            y[r * n + j] = acc;
        }
}

/* y = bias + S @ wt (y is rows x n); bias may be NULL. */
void event_forward(const int64_t *row_ptr, const int32_t *cols, int64_t rows, const float *wt,
                   const float *bias, float *y, int64_t n, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < tile_count(n); ++t)
        forward_columns(row_ptr, cols, rows, wt, bias, y, n, t * TILE, tile_end(t, n));
}

static inline __attribute__((always_inline)) void weight_grad_tile(
        const int64_t *row_ptr, const int32_t *cols, int64_t rows, const float *g,
        float *gwt, int64_t n, int64_t j0, const int nv) {
    for (int64_t r = 0; r < rows; ++r) {
        vec gr[MAX_VECS];
        for (int v = 0; v < nv; ++v) gr[v] = load(g + r * n + j0 + v * LANES);
        for (int64_t a = row_ptr[r]; a < row_ptr[r + 1]; ++a) {
            float *dst = gwt + (int64_t)cols[a] * n + j0;
            for (int v = 0; v < nv; ++v) store(dst + v * LANES, load(dst + v * LANES) + gr[v]);
        }
    }
}

/* Columns [j0, j1) of gwt, zeroed first: whole tiles, one-vector tiles, then single columns. */
static void weight_grad_columns(const int64_t *row_ptr, const int32_t *cols, int64_t rows, int64_t k,
                                const float *g, float *gwt, int64_t n, int64_t j0, int64_t j1) {
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = j0; j < j1; ++j) gwt[i * n + j] = 0.0f;
    int64_t j = j0;
    for (; j + TILE <= j1; j += TILE) weight_grad_tile(row_ptr, cols, rows, g, gwt, n, j, MAX_VECS);
    for (; j + LANES <= j1; j += LANES) weight_grad_tile(row_ptr, cols, rows, g, gwt, n, j, 1);
    for (; j < j1; ++j)
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t a = row_ptr[r]; a < row_ptr[r + 1]; ++a) gwt[(int64_t)cols[a] * n + j] += g[r * n + j];
}

/* gwt = S^T @ g (gwt is k x n). */
void event_weight_grad(const int64_t *row_ptr, const int32_t *cols, int64_t rows, int64_t k,
                       const float *g, float *gwt, int64_t n, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < tile_count(n); ++t)
        weight_grad_columns(row_ptr, cols, rows, k, g, gwt, n, t * TILE, tile_end(t, n));
}
