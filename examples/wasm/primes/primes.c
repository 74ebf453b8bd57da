/*
 * primes LO HI: writes every prime p with LO <= p < HI, one per line in decimal, to
 * /out/primes.txt, and prints "count N" to stdout. Bad arguments: a message on stderr, exit 2.
 *
 * A segmented sieve of Eratosthenes: the base primes up to sqrt(HI) once, then the range in
 * fixed-size segments, so memory stays bounded (about 100 KiB) for any HI up to 10^9. No
 * clocks, no randomness: the same arguments give the same bytes and the same work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HI 1000000000u
/* Above sqrt(MAX_HI) = 31622.8. */
#define BASE_LIMIT 31623u
#define SEGMENT 65536u

static unsigned char base_composite[BASE_LIMIT + 1];
static unsigned base_primes[BASE_LIMIT];
static unsigned n_base_primes;
static unsigned char segment_composite[SEGMENT];

static int usage(const char *problem) {
    fputs("primes: ", stderr);
    fputs(problem, stderr);
    fputs("\nusage: primes LO HI (0 <= LO <= HI <= 1000000000)\n", stderr);
    return 2;
}

/* Parses a decimal number of at most MAX_HI; returns 0 on anything else. */
static int parse(const char *text, unsigned *value) {
    unsigned long long n = 0;
    if (*text == '\0') return 0;
    for (; *text; text++) {
        if (*text < '0' || *text > '9') return 0;
        n = n * 10 + (unsigned)(*text - '0');
        if (n > MAX_HI) return 0;
    }
    *value = (unsigned)n;
    return 1;
}

/* The primes below BASE_LIMIT + 1, by a plain sieve. */
static void sieve_base(void) {
    for (unsigned i = 2; i * i <= BASE_LIMIT; i++)
        if (!base_composite[i])
            for (unsigned j = i * i; j <= BASE_LIMIT; j += i) base_composite[j] = 1;
    for (unsigned i = 2; i <= BASE_LIMIT; i++)
        if (!base_composite[i]) base_primes[n_base_primes++] = i;
}

/* Writes n and a newline into out; returns the number of bytes written. */
static size_t format_line(unsigned n, char *out) {
    char digits[10];
    size_t len = 0;
    do {
        digits[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    for (size_t i = 0; i < len; i++) out[i] = digits[len - 1 - i];
    out[len] = '\n';
    return len + 1;
}

/* Marks the composites of [lo, lo + len) in segment_composite. */
static void sieve_segment(unsigned lo, unsigned len) {
    memset(segment_composite, 0, len);
    for (unsigned i = 0; i < n_base_primes; i++) {
        unsigned long long p = base_primes[i];
        if (p * p >= (unsigned long long)lo + len) break;
        unsigned long long first = (lo + p - 1) / p * p;
        if (first < p * p) first = p * p;
        for (unsigned long long m = first; m < (unsigned long long)lo + len; m += p)
            segment_composite[m - lo] = 1;
    }
    /* 0 and 1 are not prime. */
    for (unsigned n = lo; n < 2 && n < lo + len; n++) segment_composite[n - lo] = 1;
}

int main(int argc, char **argv) {
    unsigned lo, hi;
    if (argc != 3) return usage("expected two arguments");
    if (!parse(argv[1], &lo) || !parse(argv[2], &hi)) return usage("LO and HI must be decimal numbers of at most 1000000000");
    if (lo > hi) return usage("LO must not exceed HI");

    FILE *out = fopen("/out/primes.txt", "w");
    if (!out) {
        fputs("primes: cannot create /out/primes.txt\n", stderr);
        return 1;
    }
    sieve_base();
    static char buffer[SEGMENT * 2];
    unsigned count = 0;
    for (unsigned start = lo; start < hi;) {
        unsigned len = hi - start < SEGMENT ? hi - start : SEGMENT;
        sieve_segment(start, len);
        size_t used = 0;
        for (unsigned i = 0; i < len; i++) {
            if (segment_composite[i]) continue;
            if (used + 11 > sizeof buffer) {
                fwrite(buffer, 1, used, out);
                used = 0;
            }
            used += format_line(start + i, buffer + used);
            count++;
        }
        fwrite(buffer, 1, used, out);
        start += len;
    }
    int failed = ferror(out);
    if (fclose(out) != 0 || failed) {
        fputs("primes: writing /out/primes.txt failed\n", stderr);
        return 1;
    }
    char line[32] = "count ";
    size_t len = 6 + format_line(count, line + 6);
    fwrite(line, 1, len, stdout);
    return 0;
}
