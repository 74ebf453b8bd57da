/*
 * train: one epoch of a 784-H-10 MLP (ReLU hidden layer, softmax output, cross-entropy loss,
 * per-sample SGD) on an MNIST CSV, resumable from the previous epoch's checkpoint.
 *
 *   train --data CSV --epoch N [--seed S] [--hidden H] [--lr LR] [--resume CKPT] [--out DIR]
 *
 * Epoch 1 starts from weights drawn from the seed and takes no --resume; epoch N > 1 takes
 * --resume with the checkpoint of epoch N - 1. Writes ckpt.bin (format in README.md) and
 * metrics.json to DIR (default /out, the sandbox's output), and prints one summary line. Bad
 * arguments: a message on stderr, exit 2; unreadable data, a wrong checkpoint, a diverged run or
 * a failed write: a message on stderr, exit 1.
 *
 * Bitwise reproducible: the split, the sample order and the initial weights come from a fixed
 * generator (splitmix64) keyed by the seed and the epoch; every float operation is an IEEE
 * operation in a fixed order (no libm: exp and log are below, sqrt is one instruction; build
 * with -ffp-contract=off so that nothing is fused). The same module, data and arguments give the
 * same checkpoint on any machine, and a native x86-64 build of this file gives the same one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUTS 784
#define OUTPUTS 10
#define MAX_HIDDEN 1024
#define MAX_EPOCH 100000u
#define MAX_ROWS 100000u
/* One in TEST_FRACTION rows is held out for testing (1,000 of mnist_5k's 5,000). */
#define TEST_FRACTION 5u
#define CKPT_MAGIC "SGLTRAIN"
#define CKPT_VERSION 1u
#define CKPT_HEADER 40u
#define CKPT_NAME "ckpt.bin"
#define METRICS_NAME "metrics.json"

/* Generator streams: one per use of the seed. */
#define STREAM_SPLIT 1u
#define STREAM_INIT 2u
#define STREAM_ORDER 3u

struct config {
    const char *data;
    const char *resume;
    const char *out;
    uint32_t epoch;
    uint32_t hidden;
    uint64_t seed;
    float lr;
    int seed_set, hidden_set, lr_set;
};

/* The data set, sparse: row r's nonzero pixels are index[start[r] .. start[r + 1]) with their
 * values (1..255) in value[], in increasing pixel order. */
struct dataset {
    uint32_t rows;
    uint8_t *label;
    uint32_t *start;
    uint16_t *index;
    uint8_t *value;
    size_t nonzero, capacity;
};

/* The model. w1 is [INPUTS][hidden] (input-major, so that a pixel's weights are contiguous),
 * w2 is [OUTPUTS][hidden]. */
struct model {
    uint32_t hidden;
    float *w1, *b1, *w2, *b2;
};

/* Scratch of one sample's forward and backward pass. */
struct scratch {
    float *h, *dh;
    float z[OUTPUTS], p[OUTPUTS];
};

static float pixel_value[256];

static int usage(const char *problem) {
    fprintf(stderr, "train: %s\nusage: train --data CSV --epoch N [--seed S] [--hidden H] [--lr LR] [--resume CKPT] [--out DIR]\n",
            problem);
    return 2;
}

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "train: %s%s\n", what, detail);
    return 1;
}

static void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (!p) {
        fputs("train: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* ---- Random numbers: splitmix64, keyed by (seed, stream, index). ---- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_key(uint64_t seed, uint32_t stream, uint32_t index) {
    return mix64(mix64(seed) ^ (((uint64_t)stream << 32) | index));
}

static uint64_t rng_next(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    return mix64(*state);
}

/* A float in [-limit, limit) from the top 24 bits of the next number (exact in a float). */
static float rng_uniform(uint64_t *state, float limit) {
    float unit = (float)(rng_next(state) >> 40) * (1.0f / 16777216.0f);
    return (2.0f * unit - 1.0f) * limit;
}

/* Fisher-Yates; the modulo's bias is below 2^-40 for any count here. */
static void shuffle(uint32_t *items, uint32_t count, uint64_t state) {
    for (uint32_t i = count; i > 1; i--) {
        uint32_t j = (uint32_t)(rng_next(&state) % i);
        uint32_t t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}

/* ---- exp and log in plain IEEE arithmetic. ---- */

/* e^x, within 2 ulp for x in [-87, 88]; 0 below. Cody-Waite reduction x = n ln2 + r, then a
 * degree-7 Taylor polynomial for |r| <= ln2 / 2 and 2^n from the exponent bits. */
static float exp_f(float x) {
    if (x < -87.0f) return 0.0f;
    if (x > 88.0f) x = 88.0f;
    float t = x * 1.44269504f;
    int n = (int)(t < 0.0f ? t - 0.5f : t + 0.5f);
    float r = (x - (float)n * 0.693145751953125f) - (float)n * 1.428606765330187e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { uint32_t u; float f; } scale = {(uint32_t)(n + 127) << 23};
    return p * scale.f;
}

/* ln x for finite x > 0 (normal): x = 2^e m with m in [sqrt(1/2), sqrt(2)), then
 * ln m = 2 atanh(f), f = (m - 1) / (m + 1), by its series to f^11. */
static float log_f(float x) {
    union { float f; uint32_t u; } bits = {x};
    int e = (int)((bits.u >> 23) & 0xff) - 127;
    bits.u = (bits.u & 0x007fffffu) | 0x3f800000u;
    float m = bits.f;
    if (m > 1.41421356f) {
        m *= 0.5f;
        e++;
    }
    float f = (m - 1.0f) / (m + 1.0f), f2 = f * f;
    float s = 1.0f / 11.0f;
    s = s * f2 + 1.0f / 9.0f;
    s = s * f2 + 1.0f / 7.0f;
    s = s * f2 + 1.0f / 5.0f;
    s = s * f2 + 1.0f / 3.0f;
    s = s * f2 + 1.0f;
    return (float)e * 0.693147181f + 2.0f * f * s;
}

/* ---- Arguments. ---- */

static int parse_u64(const char *text, uint64_t max, uint64_t *value) {
    uint64_t n = 0;
    if (*text == '\0') return 0;
    for (; *text; text++) {
        if (*text < '0' || *text > '9') return 0;
        uint64_t digit = (uint64_t)(*text - '0');
        if (n > (max - digit) / 10) return 0;
        n = n * 10 + digit;
    }
    *value = n;
    return 1;
}

static int parse_args(int argc, char **argv, struct config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->hidden = 64;
    cfg->lr = 0.01f;
    cfg->out = "/out";
    for (int i = 1; i < argc; i += 2) {
        const char *flag = argv[i];
        if (i + 1 >= argc) return usage("every option takes a value");
        const char *value = argv[i + 1];
        uint64_t n;
        if (!strcmp(flag, "--data")) {
            cfg->data = value;
        } else if (!strcmp(flag, "--resume")) {
            cfg->resume = value;
        } else if (!strcmp(flag, "--out")) {
            cfg->out = value;
        } else if (!strcmp(flag, "--epoch")) {
            if (!parse_u64(value, MAX_EPOCH, &n) || n == 0) return usage("--epoch must be a number from 1 to 100000");
            cfg->epoch = (uint32_t)n;
        } else if (!strcmp(flag, "--seed")) {
            if (!parse_u64(value, UINT64_MAX, &cfg->seed)) return usage("--seed must be a number below 2^64");
            cfg->seed_set = 1;
        } else if (!strcmp(flag, "--hidden")) {
            if (!parse_u64(value, MAX_HIDDEN, &n) || n == 0) return usage("--hidden must be a number from 1 to 1024");
            cfg->hidden = (uint32_t)n;
            cfg->hidden_set = 1;
        } else if (!strcmp(flag, "--lr")) {
            char *end;
            errno = 0;
            cfg->lr = strtof(value, &end);
            if (*value == '\0' || *end != '\0' || errno || !(cfg->lr > 0.0f && cfg->lr <= 10.0f))
                return usage("--lr must be a decimal number in (0, 10]");
            cfg->lr_set = 1;
        } else {
            return usage("unknown option");
        }
    }
    if (!cfg->data) return usage("--data is required");
    if (!cfg->epoch) return usage("--epoch is required");
    if (cfg->epoch == 1 && cfg->resume) return usage("epoch 1 starts from the seed and takes no --resume");
    if (cfg->epoch > 1 && !cfg->resume) return usage("an epoch after the first needs --resume CKPT");
    return 0;
}

/* ---- The CSV: rows of 784 pixels (0-255) and a label (0-9), no header. ---- */

static void push_pixel(struct dataset *d, uint32_t index, uint32_t value) {
    if (d->nonzero == d->capacity) {
        d->capacity = d->capacity ? d->capacity * 2 : 1u << 20;
        d->index = realloc(d->index, d->capacity * sizeof *d->index);
        d->value = realloc(d->value, d->capacity);
        if (!d->index || !d->value) {
            fputs("train: out of memory\n", stderr);
            exit(1);
        }
    }
    d->index[d->nonzero] = (uint16_t)index;
    d->value[d->nonzero] = (uint8_t)value;
    d->nonzero++;
}

static int bad_line(uint32_t line) {
    fprintf(stderr, "train: data line %u: expected 784 pixels (0-255) and a label (0-9)\n", (unsigned)line);
    return 1;
}

/* Parses the line at *at, which ends with '\n' (or "\r\n") at or before `last`, as row d->rows,
 * and moves *at past it. No step moves past a '\n', so a bad line fails before `last`. Most
 * pixels are "0,", which the first two tests take four or one at a time (the first may read up
 * to 7 bytes past the '\n', inside the buffer, when it fails). 0, or 1 with a message. */
static int parse_line(const unsigned char **at, struct dataset *d, uint32_t line) {
    const unsigned char *p = *at;
    for (uint32_t field = 0; field <= INPUTS; field++) {
        if (field + 4 <= INPUTS && !memcmp(p, "0,0,0,0,", 8)) {
            p += 8, field += 3;
            continue;
        }
        if (field < INPUTS && p[0] == '0' && p[1] == ',') {
            p += 2;
            continue;
        }
        uint32_t value = 0, digits = 0;
        for (; digits < 3 && (unsigned)(*p - '0') <= 9; digits++, p++) value = value * 10 + (uint32_t)(*p - '0');
        if (!digits) return bad_line(line);
        if (field < INPUTS) {
            if (*p++ != ',' || value > 255) return bad_line(line);
            if (value) push_pixel(d, field, value);
        } else {
            if (*p == '\r') p++;
            if (*p++ != '\n' || value > 9) return bad_line(line);
            d->label[d->rows] = (uint8_t)value;
        }
    }
    if (d->rows + 1 >= MAX_ROWS) return fail("the data has too many rows", "");
    d->start[++d->rows] = (uint32_t)d->nonzero;
    *at = p;
    return 0;
}

/* Reads the CSV in blocks, parsing the whole lines of each and keeping the partial last one for
 * the next (a last line without '\n' gets one). */
static int load_csv(const char *path, struct dataset *d) {
    FILE *in = fopen(path, "rb");
    if (!in) return fail("cannot open the data ", path);
    d->label = xcalloc(MAX_ROWS, 1);
    d->start = xcalloc(MAX_ROWS + 1, sizeof *d->start);
    /* A line is at most 785 * 4 bytes and "\r\n". One more byte for a missing final '\n', and 8
     * for parse_line's reads past the end. */
    static unsigned char buffer[(1 << 16) + 1 + 8];
    size_t kept = 0, size = 1 << 16;
    uint32_t line = 1;
    for (;;) {
        size_t got = fread(buffer + kept, 1, size - kept, in), len = kept + got;
        if (!got && ferror(in)) return fail("cannot read the data ", path);
        if (!got && !kept) break;
        if (!got) buffer[len++] = '\n';
        const unsigned char *p = buffer, *last = buffer + len;
        while (last > p && last[-1] != '\n') last--;
        if (last == p && len == size) return fail("the data has a line longer than 785 fields can be", "");
        while (p < last)
            if (parse_line(&p, d, line++)) return 1;
        kept = len - (size_t)(p - buffer);
        memmove(buffer, p, kept);
    }
    fclose(in);
    if (d->rows < 2 * TEST_FRACTION) return fail("the data has too few rows", "");
    return 0;
}

/* ---- The model. ---- */

static void model_alloc(struct model *m, uint32_t hidden) {
    m->hidden = hidden;
    m->w1 = xcalloc((size_t)INPUTS * hidden, sizeof(float));
    m->b1 = xcalloc(hidden, sizeof(float));
    m->w2 = xcalloc((size_t)OUTPUTS * hidden, sizeof(float));
    m->b2 = xcalloc(OUTPUTS, sizeof(float));
}

/* He-uniform hidden weights, Glorot-uniform output weights, zero biases. */
static void model_init(struct model *m, uint64_t seed) {
    uint64_t state = rng_key(seed, STREAM_INIT, 0);
    float limit1 = __builtin_sqrtf(6.0f / (float)INPUTS);
    float limit2 = __builtin_sqrtf(6.0f / (float)(m->hidden + OUTPUTS));
    for (size_t i = 0; i < (size_t)INPUTS * m->hidden; i++) m->w1[i] = rng_uniform(&state, limit1);
    for (size_t i = 0; i < (size_t)OUTPUTS * m->hidden; i++) m->w2[i] = rng_uniform(&state, limit2);
}

/* The weights in checkpoint order: w1, b1, w2, b2. */
static size_t model_arrays(const struct model *m, float **arrays, size_t *counts) {
    arrays[0] = m->w1, counts[0] = (size_t)INPUTS * m->hidden;
    arrays[1] = m->b1, counts[1] = m->hidden;
    arrays[2] = m->w2, counts[2] = (size_t)OUTPUTS * m->hidden;
    arrays[3] = m->b2, counts[3] = OUTPUTS;
    return 4;
}

/* The dot product of a and b in four interleaved partial sums (lane l takes the terms
 * j = l mod 4, the tail goes to lane 0), added pairwise: a fixed order that compiles to
 * 4-wide SIMD. */
static float dot(const float *restrict a, const float *restrict b, uint32_t n) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    uint32_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (uint32_t l = 0; l < 4; l++) acc[l] += a[j + l] * b[j + l];
    for (; j < n; j++) acc[0] += a[j] * b[j];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* y += a * x over n floats. */
static void axpy(float *restrict y, float a, const float *restrict x, uint32_t n) {
    for (uint32_t j = 0; j < n; j++) y[j] += a * x[j];
}

/* Softmax probabilities of sample r into s->p; returns its cross-entropy loss. The hidden layer
 * adds only the nonzero pixels' weights, which is what a dense sum would give. */
static float forward(const struct model *m, const struct dataset *d, uint32_t r, struct scratch *s) {
    uint32_t hidden = m->hidden;
    float *h = s->h;
    memcpy(h, m->b1, hidden * sizeof(float));
    for (uint32_t k = d->start[r]; k < d->start[r + 1]; k++)
        axpy(h, pixel_value[d->value[k]], m->w1 + (size_t)d->index[k] * hidden, hidden);
    for (uint32_t j = 0; j < hidden; j++) h[j] = h[j] > 0.0f ? h[j] : 0.0f;
    float top = 0.0f;
    for (uint32_t o = 0; o < OUTPUTS; o++) {
        s->z[o] = m->b2[o] + dot(m->w2 + (size_t)o * hidden, h, hidden);
        if (o == 0 || s->z[o] > top) top = s->z[o];
    }
    float sum = 0.0f;
    for (uint32_t o = 0; o < OUTPUTS; o++) {
        s->p[o] = exp_f(s->z[o] - top);
        sum += s->p[o];
    }
    for (uint32_t o = 0; o < OUTPUTS; o++) s->p[o] /= sum;
    return log_f(sum) - (s->z[d->label[r]] - top);
}

/* w -= a * x over n floats, and g += b * w with w as it was. */
static void step_and_backpropagate(float *restrict w, float a, const float *restrict x, float *restrict g, float b,
                                   uint32_t n) {
    for (uint32_t j = 0; j < n; j++) {
        g[j] += b * w[j];
        w[j] -= a * x[j];
    }
}

/* One SGD step on sample r after forward(): output layer, then hidden layer, with the output
 * weights as they were in the forward pass. */
static void backward(struct model *m, const struct dataset *d, uint32_t r, struct scratch *s, float lr) {
    uint32_t hidden = m->hidden;
    float *h = s->h, *dh = s->dh;
    memset(dh, 0, hidden * sizeof(float));
    for (uint32_t o = 0; o < OUTPUTS; o++) {
        float dz = s->p[o] - (o == d->label[r] ? 1.0f : 0.0f);
        step_and_backpropagate(m->w2 + (size_t)o * hidden, lr * dz, h, dh, dz, hidden);
        m->b2[o] -= lr * dz;
    }
    /* From here dh holds -lr times the hidden pre-activations' gradient. */
    for (uint32_t j = 0; j < hidden; j++) {
        dh[j] = h[j] > 0.0f ? -(lr * dh[j]) : 0.0f;
        m->b1[j] += dh[j];
    }
    for (uint32_t k = d->start[r]; k < d->start[r + 1]; k++)
        axpy(m->w1 + (size_t)d->index[k] * hidden, pixel_value[d->value[k]], dh, hidden);
}

static uint32_t predict(const struct scratch *s) {
    uint32_t best = 0;
    for (uint32_t o = 1; o < OUTPUTS; o++)
        if (s->p[o] > s->p[best]) best = o;
    return best;
}

/* ---- Checkpoints (little endian, see README.md). ---- */

static void put_u32(unsigned char *out, uint32_t v) {
    for (int i = 0; i < 4; i++) out[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *in) {
    return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

static uint32_t float_bits(float f) {
    union { float f; uint32_t u; } bits = {f};
    return bits.u;
}

static float bits_float(uint32_t u) {
    union { uint32_t u; float f; } bits = {u};
    return bits.f;
}

static size_t ckpt_size(uint32_t hidden) {
    return CKPT_HEADER + 4 * ((size_t)(INPUTS + 1 + OUTPUTS) * hidden + OUTPUTS);
}

static int write_ckpt(const struct model *m, const struct config *cfg) {
    size_t size = ckpt_size(m->hidden);
    unsigned char *out = xcalloc(size, 1);
    memcpy(out, CKPT_MAGIC, 8);
    put_u32(out + 8, CKPT_VERSION);
    put_u32(out + 12, cfg->epoch);
    put_u32(out + 16, INPUTS);
    put_u32(out + 20, m->hidden);
    put_u32(out + 24, OUTPUTS);
    put_u32(out + 28, float_bits(cfg->lr));
    put_u32(out + 32, (uint32_t)cfg->seed);
    put_u32(out + 36, (uint32_t)(cfg->seed >> 32));
    float *arrays[4];
    size_t counts[4], at = CKPT_HEADER;
    for (size_t a = 0, n = model_arrays(m, arrays, counts); a < n; a++)
        for (size_t i = 0; i < counts[a]; i++, at += 4) put_u32(out + at, float_bits(arrays[a][i]));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cfg->out, CKPT_NAME);
    FILE *file = fopen(path, "wb");
    int ok = file && fwrite(out, 1, size, file) == size;
    ok = file && fclose(file) == 0 && ok;
    free(out);
    return ok ? 0 : fail("cannot write ", path);
}

/* Reads the whole file (at most the largest checkpoint's size plus one byte). */
static unsigned char *read_file(const char *path, size_t *size) {
    FILE *in = fopen(path, "rb");
    if (!in) return NULL;
    size_t cap = ckpt_size(MAX_HIDDEN) + 1;
    unsigned char *bytes = xcalloc(cap, 1);
    *size = fread(bytes, 1, cap, in);
    int failed = ferror(in);
    fclose(in);
    if (failed) {
        free(bytes);
        return NULL;
    }
    return bytes;
}

/* Checks the header against the run's arguments; takes the seed, hidden size and rate from it
 * when the arguments left them out. 0, or 1 with a message. */
static int check_header(const unsigned char *in, size_t size, struct config *cfg) {
    const char *path = cfg->resume;
    if (size < CKPT_HEADER || memcmp(in, CKPT_MAGIC, 8)) return fail("not a train checkpoint: ", path);
    if (get_u32(in + 8) != CKPT_VERSION) return fail("unsupported checkpoint version in ", path);
    uint32_t epoch = get_u32(in + 12), hidden = get_u32(in + 20);
    uint64_t seed = get_u32(in + 32) | (uint64_t)get_u32(in + 36) << 32;
    float lr = bits_float(get_u32(in + 28));
    if (get_u32(in + 16) != INPUTS || get_u32(in + 24) != OUTPUTS || hidden == 0 || hidden > MAX_HIDDEN)
        return fail("the checkpoint is not of a 784-H-10 model: ", path);
    if (size != ckpt_size(hidden)) return fail("the checkpoint's size does not match its header: ", path);
    if (epoch != cfg->epoch - 1) {
        fprintf(stderr, "train: %s holds epoch %u, but epoch %u resumes from epoch %u\n", path, (unsigned)epoch,
                (unsigned)cfg->epoch, (unsigned)(cfg->epoch - 1));
        return 1;
    }
    if ((cfg->seed_set && seed != cfg->seed) || (cfg->hidden_set && hidden != cfg->hidden) ||
        (cfg->lr_set && float_bits(lr) != float_bits(cfg->lr)))
        return fail("the checkpoint was trained with another --seed, --hidden or --lr: ", path);
    cfg->seed = seed, cfg->hidden = hidden, cfg->lr = lr;
    return 0;
}

static int read_ckpt(struct model *m, struct config *cfg) {
    size_t size;
    unsigned char *in = read_file(cfg->resume, &size);
    if (!in) return fail("cannot read the checkpoint ", cfg->resume);
    if (check_header(in, size, cfg)) return 1;
    model_alloc(m, cfg->hidden);
    float *arrays[4];
    size_t counts[4], at = CKPT_HEADER;
    for (size_t a = 0, n = model_arrays(m, arrays, counts); a < n; a++) {
        for (size_t i = 0; i < counts[a]; i++, at += 4) {
            float w = bits_float(get_u32(in + at));
            if (!(w - w == 0.0f)) return fail("the checkpoint holds a weight that is not finite: ", cfg->resume);
            arrays[a][i] = w;
        }
    }
    free(in);
    return 0;
}

/* ---- Metrics. ---- */

/* Writes value (>= 0) rounded to 6 decimals, e.g. "0.412345"; no libc float formatting. */
static void format_fixed6(char *out, size_t cap, double value) {
    uint64_t micro = (uint64_t)(value * 1e6 + 0.5);
    snprintf(out, cap, "%llu.%06llu", (unsigned long long)(micro / 1000000), (unsigned long long)(micro % 1000000));
}

static int write_metrics(const struct config *cfg, const char *loss, const char *accuracy) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cfg->out, METRICS_NAME);
    FILE *out = fopen(path, "w");
    if (!out) return fail("cannot write ", path);
    fprintf(out, "{\"epoch\":%u,\"train_loss\":%s,\"test_accuracy\":%s}\n", (unsigned)cfg->epoch, loss, accuracy);
    int failed = ferror(out);
    if (fclose(out) != 0 || failed) return fail("cannot write ", path);
    return 0;
}

/* ---- One epoch. ---- */

/* The rows' order for this epoch: a shuffle of all rows by the seed, whose first rows / 5 are
 * the test set (the same every epoch), then the rest, the training set, shuffled again by
 * (seed, epoch). */
static uint32_t *order_rows(uint32_t rows, const struct config *cfg) {
    uint32_t *order = xcalloc(rows, sizeof *order);
    for (uint32_t r = 0; r < rows; r++) order[r] = r;
    shuffle(order, rows, rng_key(cfg->seed, STREAM_SPLIT, 0));
    uint32_t n_test = rows / TEST_FRACTION;
    shuffle(order + n_test, rows - n_test, rng_key(cfg->seed, STREAM_ORDER, cfg->epoch));
    return order;
}

/* One SGD step per training row, in order; the mean loss (before each step) in *loss. */
static int train_rows(struct model *m, const struct dataset *d, const uint32_t *rows, uint32_t n, float lr,
                      struct scratch *s, double *loss) {
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        float sample_loss = forward(m, d, rows[i], s);
        if (!(sample_loss - sample_loss == 0.0f)) return fail("training diverged (a loss that is not finite)", "");
        sum += sample_loss;
        backward(m, d, rows[i], s, lr);
    }
    *loss = sum / n;
    return 0;
}

static uint32_t count_correct(const struct model *m, const struct dataset *d, const uint32_t *rows, uint32_t n,
                              struct scratch *s) {
    uint32_t correct = 0;
    for (uint32_t i = 0; i < n; i++) {
        forward(m, d, rows[i], s);
        correct += predict(s) == d->label[rows[i]];
    }
    return correct;
}

int main(int argc, char **argv) {
    struct config cfg;
    int status = parse_args(argc, argv, &cfg);
    if (status) return status;
    for (int v = 0; v < 256; v++) pixel_value[v] = (float)v / 255.0f;

    struct model model;
    if (cfg.resume) {
        if (read_ckpt(&model, &cfg)) return 1;
    } else {
        model_alloc(&model, cfg.hidden);
        model_init(&model, cfg.seed);
    }
    struct dataset data = {0};
    if (load_csv(cfg.data, &data)) return 1;

    uint32_t *order = order_rows(data.rows, &cfg);
    uint32_t n_test = data.rows / TEST_FRACTION;
    struct scratch s = {.h = xcalloc(cfg.hidden, sizeof(float)), .dh = xcalloc(cfg.hidden, sizeof(float))};
    double train_loss;
    if (train_rows(&model, &data, order + n_test, data.rows - n_test, cfg.lr, &s, &train_loss)) return 1;
    uint32_t correct = count_correct(&model, &data, order, n_test, &s);

    if (write_ckpt(&model, &cfg)) return 1;
    char loss[32], accuracy[32];
    format_fixed6(loss, sizeof loss, train_loss);
    format_fixed6(accuracy, sizeof accuracy, (double)correct / n_test);
    if (write_metrics(&cfg, loss, accuracy)) return 1;
    printf("epoch %u train_loss %s test_accuracy %s (%u/%u) hidden %u seed %llu\n", (unsigned)cfg.epoch, loss,
           accuracy, (unsigned)correct, (unsigned)n_test, (unsigned)cfg.hidden, (unsigned long long)cfg.seed);
    return 0;
}
