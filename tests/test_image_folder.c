/* test_image_folder.c - folders of images as datasets (io/image_folder.c):
 * class labels and file order, every format (PNG written here with zlib,
 * PGM/PPM by hand, PNG/BMP by stb_image_write, JPEG made by PIL and embedded)
 * against the pixels the test wrote, 16-bit and maxval scaling, scale/mean/std
 * in NCHW and NHWC against naive loops, grayscale and RGB conversion,
 * resizing against hand-computed and PIL/torchvision values, lazy decoding of
 * a sub-range, detection next to IDX/NPY directories, truncation at every
 * length for each format, hostile headers, bad options, and injected
 * allocation failures. */
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/data.h"
#include "qtest.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

/* ---- helpers ---------------------------------------------------------------- */
static char tmp_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/qf_test_imgdir_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

/* mkdir -p of a path under tmp_dir; returns the full path. */
static const char *mk(const char *rel) {
    const char *p = tmp_path(rel);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    return system(cmd) == 0 ? p : NULL;
}

static int write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    fclose(f);
    return w == len ? 0 : -1;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

static char *path_in(const char *dir, const char *name) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Binary PGM (comp 1) or PPM (comp 3), with a comment line in the header. */
static int write_pnm(const char *path, int w, int h, int comp, const unsigned char *px) {
    char hdr[64];
    int n =
        snprintf(hdr, sizeof hdr, "P%c\n# qforge test\n%d %d\n255\n", comp == 1 ? '5' : '6', w, h);
    size_t len = (size_t)n + (size_t)(w * h * comp);
    unsigned char *b = malloc(len);
    memcpy(b, hdr, (size_t)n);
    memcpy(b + n, px, (size_t)(w * h * comp));
    int r = write_bytes(path, b, len);
    free(b);
    return r;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static size_t png_chunk(unsigned char *out, const char *type, const unsigned char *data,
                        uint32_t n) {
    put_be32(out, n);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    uLong crc = crc32(0, out + 4, 4 + n);
    put_be32(out + 8 + n, (uint32_t)crc);
    return 12 + n;
}

/* Optional PLTE and tRNS chunks of a PNG. */
typedef struct png_extra {
    const unsigned char *plte, *trns;
    uint32_t plte_len, trns_len;
    bool depth16; /* px holds big-endian 16-bit samples */
} png_extra;

/* A minimal 8-bit PNG written with zlib, independent of stb. color: 0 gray,
 * 2 RGB, 3 palette indices, 4 gray+alpha, 6 RGBA. IHDR may claim other dims
 * than the data has (for hostile files): claim_w/claim_h 0 = the real ones. */
static int write_png_full(const char *path, int w, int h, int color, const unsigned char *px,
                          uint32_t claim_w, uint32_t claim_h, const png_extra *extra) {
    int comp = color == 0 || color == 3 ? 1 : color == 2 ? 3 : color == 4 ? 2 : 4;
    if (extra && extra->depth16) comp *= 2; /* bytes per pixel from here on */
    size_t raw_len = (size_t)h * (size_t)(1 + w * comp);
    unsigned char *raw = malloc(raw_len + 1);
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * (size_t)(1 + w * comp)] = 0; /* filter: none */
        memcpy(raw + (size_t)y * (size_t)(1 + w * comp) + 1, px + (size_t)(y * w * comp),
               (size_t)(w * comp));
    }
    uLongf zlen = compressBound((uLong)raw_len);
    unsigned char *z = malloc(zlen);
    compress(z, &zlen, raw, (uLong)raw_len);
    unsigned char *out = malloc(64 + 3 * 256 + 256 + zlen);
    size_t o = 0;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    o = 8;
    unsigned char ihdr[13];
    put_be32(ihdr, claim_w ? claim_w : (uint32_t)w);
    put_be32(ihdr + 4, claim_h ? claim_h : (uint32_t)h);
    ihdr[8] = extra && extra->depth16 ? 16 : 8;
    ihdr[9] = (unsigned char)color;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    o += png_chunk(out + o, "IHDR", ihdr, 13);
    if (extra && extra->plte) o += png_chunk(out + o, "PLTE", extra->plte, extra->plte_len);
    if (extra && extra->trns) o += png_chunk(out + o, "tRNS", extra->trns, extra->trns_len);
    o += png_chunk(out + o, "IDAT", z, (uint32_t)zlen);
    o += png_chunk(out + o, "IEND", NULL, 0);
    int r = write_bytes(path, out, o);
    free(raw);
    free(z);
    free(out);
    return r;
}

static int write_png_ex(const char *path, int w, int h, int color, const unsigned char *px,
                        uint32_t claim_w, uint32_t claim_h) {
    return write_png_full(path, w, h, color, px, claim_w, claim_h, NULL);
}

static int write_png(const char *path, int w, int h, int color, const unsigned char *px) {
    return write_png_full(path, w, h, color, px, 0, 0, NULL);
}

/* Deterministic test pixels: distinct per image, row, column and channel. */
static unsigned char pix(int id, int y, int x, int c) {
    return (unsigned char)((id * 50 + y * 17 + x * 29 + c * 83) % 256);
}

static void fill_pixels(unsigned char *px, int id, int w, int h, int comp) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comp; c++)
                px[(y * w + x) * comp + c] = pix(id, y, x, c);
}


/* JPEG files made by PIL 9.4 (python3-pil), embedded so that the test does not
 * need Python:
 *  jpeg_smooth_5x4: RGB 60 + 10y + 8x + 30c, quality 100, no chroma subsampling;
 *  jpeg_prog_4x3: RGB pix(9, y, x, c), quality 90, progressive;
 *  jpeg_gray_6x5: gray pix(2, y, x, 0), quality 95. */
static const unsigned char jpeg_smooth_5x4[653] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0,
    0x00, 0x11, 0x08, 0x00, 0x04, 0x00, 0x05, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11,
    0x01, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05,
    0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21,
    0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23,
    0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
    0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
    0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5,
    0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xc4, 0x00, 0x1f, 0x01, 0x00, 0x03,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x11, 0x00,
    0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00,
    0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15,
    0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27,
    0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
    0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
    0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
    0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0x93,
    0xe1, 0x3f, 0xc3, 0x6f, 0x09, 0x7f, 0xc2, 0x36, 0x9f, 0xf1, 0x2f, 0xff, 0x00, 0x9e, 0x3d, 0xd3,
    0xfb, 0x8d, 0xff, 0x00, 0x4c, 0xeb, 0xfa, 0x80, 0xfe, 0x77, 0x3f, 0xff, 0xd9,
};

static const unsigned char jpeg_prog_4x3[595] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x03, 0x02, 0x02, 0x03, 0x02, 0x02, 0x03,
    0x03, 0x03, 0x03, 0x04, 0x03, 0x03, 0x04, 0x05, 0x08, 0x05, 0x05, 0x04, 0x04, 0x05, 0x0a, 0x07,
    0x07, 0x06, 0x08, 0x0c, 0x0a, 0x0c, 0x0c, 0x0b, 0x0a, 0x0b, 0x0b, 0x0d, 0x0e, 0x12, 0x10, 0x0d,
    0x0e, 0x11, 0x0e, 0x0b, 0x0b, 0x10, 0x16, 0x10, 0x11, 0x13, 0x14, 0x15, 0x15, 0x15, 0x0c, 0x0f,
    0x17, 0x18, 0x16, 0x14, 0x18, 0x12, 0x14, 0x15, 0x14, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x03, 0x04,
    0x04, 0x05, 0x04, 0x05, 0x09, 0x05, 0x05, 0x09, 0x14, 0x0d, 0x0b, 0x0d, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0xff, 0xc2,
    0x00, 0x11, 0x08, 0x00, 0x03, 0x00, 0x04, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11,
    0x01, 0xff, 0xc4, 0x00, 0x15, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xff, 0xc4, 0x00, 0x15, 0x01, 0x01, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x07, 0xff,
    0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x10, 0x03, 0x10, 0x00, 0x00, 0x01, 0x92, 0x28, 0xc2,
    0xff, 0x00, 0xff, 0xc4, 0x00, 0x16, 0x10, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x04, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01,
    0x00, 0x01, 0x05, 0x02, 0xcc, 0x0d, 0x47, 0xff, 0xc4, 0x00, 0x1b, 0x11, 0x00, 0x02, 0x01, 0x05,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x04, 0x00,
    0x03, 0x11, 0x21, 0xb1, 0xff, 0xda, 0x00, 0x08, 0x01, 0x03, 0x01, 0x01, 0x3f, 0x01, 0x9a, 0xc5,
    0xa4, 0xdc, 0x66, 0x3b, 0xc9, 0xed, 0x7f, 0xff, 0xc4, 0x00, 0x18, 0x11, 0x00, 0x02, 0x03, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03,
    0x21, 0xff, 0xda, 0x00, 0x08, 0x01, 0x02, 0x01, 0x01, 0x3f, 0x01, 0xaf, 0x20, 0x8f, 0xff, 0xc4,
    0x00, 0x19, 0x10, 0x00, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x11, 0x00, 0x12, 0x71, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00,
    0x06, 0x3f, 0x02, 0x6d, 0x85, 0x8c, 0x54, 0x73, 0x3f, 0xff, 0xc4, 0x00, 0x17, 0x10, 0x01, 0x01,
    0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x21,
    0x00, 0x41, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x01, 0x3f, 0x21, 0x70, 0x2b, 0xc7, 0x03,
    0x0d, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0xff,
    0x00, 0xff, 0xc4, 0x00, 0x18, 0x11, 0x01, 0x00, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x11, 0x21, 0x31, 0xff, 0xda, 0x00, 0x08, 0x01,
    0x03, 0x01, 0x01, 0x3f, 0x10, 0x4f, 0x0a, 0xbd, 0x75, 0xea, 0x7f, 0xff, 0xc4, 0x00, 0x18, 0x11,
    0x01, 0x00, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x11, 0x21, 0xb1, 0xff, 0xda, 0x00, 0x08, 0x01, 0x02, 0x01, 0x01, 0x3f, 0x10, 0x20,
    0xc3, 0x28, 0xe4, 0xff, 0xc4, 0x00, 0x19, 0x10, 0x01, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x41, 0x11, 0x31, 0xb1, 0xff, 0xda,
    0x00, 0x08, 0x01, 0x01, 0x00, 0x01, 0x3f, 0x10, 0x50, 0x25, 0x11, 0x8a, 0x02, 0x83, 0xaa, 0xed,
    0x67, 0xff, 0xd9,
};

static const unsigned char jpeg_gray_6x5[398] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x01, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04,
    0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06,
    0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08,
    0x0b, 0x0c, 0x0b, 0x0a, 0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x05,
    0x00, 0x06, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
    0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03,
    0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00,
    0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32,
    0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72,
    0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35,
    0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55,
    0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2,
    0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
    0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6,
    0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda,
    0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0xd6, 0xff, 0x00, 0x82, 0xbe, 0x78, 0xdf, 0xe2,
    0xdf, 0xec, 0x9b, 0xfb, 0x28, 0x7c, 0x0c, 0xf8, 0x5b, 0xfb, 0x33, 0xfc, 0x5c, 0xf1, 0x07, 0x80,
    0xbf, 0xe1, 0x35, 0xd4, 0xb5, 0xad, 0x57, 0x5b, 0xf1, 0x1f, 0x83, 0xb5, 0xbb, 0xdd, 0x2f, 0x55,
    0x6f, 0xec, 0xc8, 0x6c, 0x61, 0x86, 0xd1, 0x6e, 0x2d, 0x6e, 0x23, 0xcd, 0xb3, 0xff, 0x00, 0x6a,
    0x4b, 0x24, 0x91, 0xb2, 0xb6, 0xe7, 0xb7, 0xb7, 0x60, 0x57, 0x61, 0x0d, 0xff, 0xd9,
};

/* ---- labels and order ------------------------------------------------------ */
static void class_folders_labels_and_order(void) {
    const char *root = mk("classes");
    CHECK(root && mk("classes/zebra") && mk("classes/apple") && mk("classes/mango") &&
          mk("classes/.git/objects"));
    unsigned char px[2 * 3];
    /* expected order: apple/10.pgm, apple/2.pgm, apple/x.png, zebra/b.pgm */
    fill_pixels(px, 0, 3, 2, 1);
    CHECK(write_pnm(path_in(root, "apple/10.pgm"), 3, 2, 1, px) == 0);
    fill_pixels(px, 1, 3, 2, 1);
    CHECK(write_pnm(path_in(root, "apple/2.pgm"), 3, 2, 1, px) == 0);
    fill_pixels(px, 2, 3, 2, 1);
    CHECK(write_png(path_in(root, "apple/x.png"), 3, 2, 0, px) == 0);
    fill_pixels(px, 3, 3, 2, 1);
    CHECK(write_pnm(path_in(root, "zebra/b.pgm"), 3, 2, 1, px) == 0);
    /* skipped: hidden files and folders; top-level files beside class folders */
    CHECK(write_bytes(path_in(root, "apple/.DS_Store"), "junk", 4) == 0);
    CHECK(write_bytes(path_in(root, ".hidden.png"), "junk", 4) == 0);
    CHECK(write_bytes(path_in(root, "README.txt"), "about", 5) == 0);

    qf_dataset *d;
    qf_err e;
    CHECK_MSG(qf_dataset_open(root, NULL, NULL, &d, &e) == QF_OK, "%s", e.msg);
    float x[4 * 6];
    int32_t lab[4];
    qf_status st = qf_dataset_fill(d, 0, 4, x, lab, &e);
    int ok_meta = d->n == 4 && d->rank == 3 && d->dims[0] == 1 && d->dims[1] == 2 &&
                  d->dims[2] == 3 && d->sample_numel == 6 && d->num_classes == 3 &&
                  d->folder != NULL && d->images.data == NULL;
    int ok_names = qf_dataset_class_name(d, 0) && !strcmp(qf_dataset_class_name(d, 0), "apple") &&
                   !strcmp(qf_dataset_class_name(d, 1), "mango") &&
                   !strcmp(qf_dataset_class_name(d, 2), "zebra") && !qf_dataset_class_name(d, 3) &&
                   !qf_dataset_class_name(d, -1);
    const char *p1 = qf_image_folder_path(d, 1);
    int ok_path = p1 && strstr(p1, "apple/2.pgm") && !qf_image_folder_path(d, 4);
    qf_dataset_free(d);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(ok_meta && ok_names && ok_path);
    static const int32_t want_lab[4] = {0, 0, 0, 2};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(lab[i], want_lab[i]);
        for (int y = 0; y < 2; y++)
            for (int xx = 0; xx < 3; xx++)
                CHECK_NEAR(x[i * 6 + y * 3 + xx], pix(i, y, xx, 0) / 255.0, 1e-6);
    }
}

/* ---- formats ---------------------------------------------------------------------- */
static void every_format_decodes_to_written_pixels(void) {
    const char *root = mk("formats");
    CHECK(root);
    enum { W = 5, H = 4 };
    unsigned char rgb[W * H * 3], rgba[W * H * 4], smooth[W * H * 3];
    fill_pixels(rgb, 7, W, H, 3);
    for (int i = 0; i < W * H; i++) {
        memcpy(rgba + i * 4, rgb + i * 3, 3);
        rgba[i * 4 + 3] = (unsigned char)(i * 13); /* alpha: dropped */
    }
    for (int y = 0; y < H; y++) /* JPEG is lossy: a smooth image, compared loosely */
        for (int xx = 0; xx < W; xx++)
            for (int c = 0; c < 3; c++)
                smooth[(y * W + xx) * 3 + c] = (unsigned char)(60 + 10 * y + 8 * xx + 30 * c);
    CHECK(write_png(path_in(root, "a.png"), W, H, 2, rgb) == 0);
    CHECK(stbi_write_bmp(path_in(root, "b.bmp"), W, H, 3, rgb) != 0);
    CHECK(write_pnm(path_in(root, "c.ppm"), W, H, 3, rgb) == 0);
    CHECK(write_png(path_in(root, "d.png"), W, H, 6, rgba) == 0);
    CHECK(write_bytes(path_in(root, "e.jpg"), jpeg_smooth_5x4, sizeof jpeg_smooth_5x4) == 0);
    /* f.bmp: b.bmp made top-down (negative height): rows come out reversed */
    size_t blen;
    unsigned char *bmp = read_all(path_in(root, "b.bmp"), &blen);
    CHECK(bmp && blen > 26 && bmp[22] == H && bmp[23] == 0);
    uint32_t negh = (uint32_t)-H;
    for (int i = 0; i < 4; i++)
        bmp[22 + i] = (unsigned char)(negh >> (8 * i));
    int wr = write_bytes(path_in(root, "f.bmp"), bmp, blen);
    free(bmp);
    CHECK(wr == 0);
    unsigned char flipped[W * H * 3];
    for (int y = 0; y < H; y++)
        memcpy(flipped + y * W * 3, rgb + (H - 1 - y) * W * 3, W * 3);
    /* g.png: RGB with a tRNS color key (stb then decodes 4 channels while
     * reporting 3); h.png: the same pixels as palette indices (pixel p uses
     * entry p) with a tRNS alpha table */
    static const unsigned char key[6] = {0, 7, 0, 5, 0, 9};
    png_extra tr = {.trns = key, .trns_len = 6};
    CHECK(write_png_full(path_in(root, "g.png"), W, H, 2, rgb, 0, 0, &tr) == 0);
    unsigned char idx[W * H], alpha[W * H];
    for (int p = 0; p < W * H; p++) {
        idx[p] = (unsigned char)p;
        alpha[p] = (unsigned char)(255 - p);
    }
    png_extra pal = {.plte = rgb, .trns = alpha, .plte_len = W * H * 3, .trns_len = W * H};
    CHECK(write_png_full(path_in(root, "h.png"), W, H, 3, idx, 0, 0, &pal) == 0);
    qf_dataset *d;
    qf_err e;
    CHECK_MSG(qf_dataset_open(root, NULL, NULL, &d, &e) == QF_OK, "%s", e.msg);
    float x[8 * 3 * H * W];
    int32_t lab[8];
    qf_status st = qf_dataset_fill(d, 0, 8, x, lab, &e);
    int meta =
        d->n == 8 && d->num_classes == 0 && d->dims[0] == 3 && d->dims[1] == H && d->dims[2] == W;
    qf_dataset_free(d);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(meta);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(lab[i], -1); /* no class folders: unlabeled */
        const unsigned char *ref = i == 4 ? smooth : i == 5 ? flipped : rgb;
        double tol = i == 4 ? 6 / 255.0 : 1e-6;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < H * W; p++)
                CHECK_MSG(fabs(x[(i * 3 + c) * H * W + p] - ref[p * 3 + c] / 255.0) <= tol,
                          "image %d channel %d pixel %d: %g vs %d/255", i, c, p,
                          x[(i * 3 + c) * H * W + p] * 255, ref[p * 3 + c]);
    }
}

/* ---- channels ------------------------------------------------------------------------ */
static void grayscale_and_rgb_conversion(void) {
    const char *root = mk("gray");
    CHECK(root);
    enum { W = 3, H = 2 };
    unsigned char ga[W * H * 2], rgb[W * H * 3], g[W * H];
    fill_pixels(ga, 1, W, H, 2);
    fill_pixels(rgb, 2, W, H, 3);
    fill_pixels(g, 3, W, H, 1);
    CHECK(write_png(path_in(root, "1_ga.png"), W, H, 4, ga) == 0);
    CHECK(write_pnm(path_in(root, "2_rgb.ppm"), W, H, 3, rgb) == 0);
    CHECK(write_pnm(path_in(root, "3_g.pgm"), W, H, 1, g) == 0);
    static const int chan_opt[2] = {0, 3}; /* 0: from the first image (gray+alpha -> 1) */
    for (int k = 0; k < 2; k++) {
        qf_dataset_options o = {.channels = chan_opt[k], .scale = 1};
        qf_dataset *d;
        qf_err e;
        CHECK_MSG(qf_dataset_open(root, NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
        int C = (int)d->dims[0];
        float x[3 * 3 * W * H];
        qf_status st = qf_dataset_fill(d, 0, 3, x, NULL, &e);
        qf_dataset_free(d);
        CHECK_MSG(st == QF_OK, "%s", e.msg);
        CHECK_EQ_INT(C, k == 0 ? 1 : 3);
        for (int p = 0; p < W * H; p++) {
            /* gray+alpha: alpha dropped; RGB -> 0.299 R + 0.587 G + 0.114 B; gray: as is */
            double luma = 0.299 * rgb[p * 3] + 0.587 * rgb[p * 3 + 1] + 0.114 * rgb[p * 3 + 2];
            for (int c = 0; c < C; c++) {
                double want[3] = {ga[p * 2], C == 1 ? luma : rgb[p * 3 + c], g[p]};
                for (int i = 0; i < 3; i++)
                    CHECK_NEAR(x[(i * C + c) * W * H + p], want[i], 1e-4);
            }
        }
    }
}

/* 16-bit samples (PGM/PPM with maxval 65535, PNG of depth 16) span the same
 * range as 8-bit ones: v / 65535 after the default scale; PNM samples are
 * rescaled by their maxval. */
static void sixteen_bit_samples(void) {
    const char *root = mk("deep");
    CHECK(root);
    enum { W = 3, H = 2 };
    uint16_t v[W * H * 3];
    unsigned char be[W * H * 3 * 2];
    for (int i = 0; i < W * H * 3; i++) {
        v[i] = (uint16_t)(i * 3001 + 7);
        be[2 * i] = (unsigned char)(v[i] >> 8);
        be[2 * i + 1] = (unsigned char)v[i];
    }
    char hdr[32];
    int n = snprintf(hdr, sizeof hdr, "P5\n%d %d\n65535\n", W, H);
    unsigned char file[64 + sizeof be];
    memcpy(file, hdr, (size_t)n);
    memcpy(file + n, be, W * H * 2);
    CHECK(write_bytes(path_in(root, "a.pgm"), file, (size_t)n + W * H * 2) == 0);
    png_extra deep = {.depth16 = true};
    CHECK(write_png_full(path_in(root, "b.png"), W, H, 0, be, 0, 0, &deep) == 0);
    n = snprintf(hdr, sizeof hdr, "P6\n%d %d\n65535\n", W, H);
    memcpy(file, hdr, (size_t)n);
    memcpy(file + n, be, sizeof be);
    CHECK(write_bytes(path_in(root, "c.ppm"), file, (size_t)n + sizeof be) == 0);
    /* and an 8-bit PGM with maxval 15: rescaled by its maxval */
    n = snprintf(hdr, sizeof hdr, "P5\n%d %d\n15\n", W, H);
    memcpy(file, hdr, (size_t)n);
    for (int p = 0; p < W * H; p++)
        file[n + p] = (unsigned char)(p * 3 % 16);
    CHECK(write_bytes(path_in(root, "d.pgm"), file, (size_t)n + W * H) == 0);
    qf_dataset *d;
    qf_err e;
    CHECK_MSG(qf_dataset_open(root, NULL, NULL, &d, &e) == QF_OK, "%s", e.msg);
    float x[4 * W * H];
    int C = (int)d->dims[0];
    qf_status st = qf_dataset_fill(d, 0, 4, x, NULL, &e);
    qf_dataset_free(d);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(C, 1); /* from the first image; the PPM is converted to luma */
    for (int p = 0; p < W * H; p++) {
        CHECK_NEAR(x[p], v[p] / 65535.0, 1e-6);
        CHECK_NEAR(x[W * H + p], v[p] / 65535.0, 1e-6);
        double luma = 0.299 * v[3 * p] + 0.587 * v[3 * p + 1] + 0.114 * v[3 * p + 2];
        CHECK_NEAR(x[2 * W * H + p], luma / 65535.0, 1e-6);
        CHECK_NEAR(x[3 * W * H + p], (p * 3 % 16) / 15.0, 1e-6);
    }
}

/* ---- preprocessing and layout ----------------------------------------------------------- */
static void scale_mean_std_nchw_nhwc(void) {
    const char *root = mk("norm/cls");
    CHECK(root);
    enum { W = 4, H = 3, N = 2 };
    unsigned char px[N][W * H * 3];
    for (int i = 0; i < N; i++) {
        fill_pixels(px[i], i + 4, W, H, 3);
        char name[16];
        snprintf(name, sizeof name, "%d.ppm", i);
        CHECK(write_pnm(path_in(root, name), W, H, 3, px[i]) == 0);
    }
    static const struct {
        float scale;
        int n_norm;
        float mean[3], std[3];
        bool nhwc;
    } cases[] = {
        {0, 3, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, false},
        {0, 3, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, true},
        {2.0f, 1, {100}, {4}, false},
        {2.0f, 1, {100}, {4}, true},
        {0, 0, {0}, {0}, true},
    };
    for (size_t k = 0; k < QF_ARRAY_LEN(cases); k++) {
        qf_dataset_options o = {
            .scale = cases[k].scale, .n_norm = cases[k].n_norm, .out_nhwc = cases[k].nhwc};
        memcpy(o.mean, cases[k].mean, sizeof cases[k].mean);
        memcpy(o.std, cases[k].std, sizeof cases[k].std);
        qf_dataset *d;
        qf_err e;
        CHECK_MSG(qf_dataset_open(tmp_path("norm"), NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
        float x[N * 3 * W * H];
        int32_t lab[N];
        qf_status st = qf_dataset_fill(d, 0, N, x, lab, &e);
        int64_t dims[3] = {d->dims[0], d->dims[1], d->dims[2]};
        qf_dataset_free(d);
        CHECK_MSG(st == QF_OK, "%s", e.msg);
        if (cases[k].nhwc)
            CHECK(dims[0] == H && dims[1] == W && dims[2] == 3);
        else
            CHECK(dims[0] == 3 && dims[1] == H && dims[2] == W);
        CHECK(lab[0] == 0 && lab[1] == 0);
        double scale = cases[k].scale ? cases[k].scale : 1.0 / 255.0;
        for (int i = 0; i < N; i++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    for (int c = 0; c < 3; c++) {
                        int kc = cases[k].n_norm == 1 ? 0 : c;
                        double mean = cases[k].n_norm ? cases[k].mean[kc] : 0;
                        double sd = cases[k].n_norm ? cases[k].std[kc] : 1;
                        double want = (px[i][(y * W + xx) * 3 + c] * scale - mean) / sd;
                        size_t at = cases[k].nhwc ? (size_t)(((i * H + y) * W + xx) * 3 + c)
                                                  : (size_t)(((i * 3 + c) * H + y) * W + xx);
                        CHECK_MSG(fabs(x[at] - want) <= 1e-5 * (1 + fabs(want)),
                                  "case %zu i%d y%d x%d c%d: %g vs %g", k, i, y, xx, c, x[at],
                                  want);
                    }
    }
}

/* ---- resizing ------------------------------------------------------------------------------ */
/* The 5x7 gray image below, resized. Expectations:
 *  - 2x2 -> 4x4 and 1x4 -> 1x2 by hand: half-pixel bilinear (clamped at the
 *    edges) when enlarging; when shrinking by 2 PIL widens the triangle to
 *    +-2 source pixels: [0,40,80,200] -> [(.75*0+.75*40+.25*80)/1.75,
 *    (.25*40+.75*80+.75*200)/1.75] = [50/1.75, 220/1.75];
 *  - the rest from PIL (Image mode "F", resample=BILINEAR) and torchvision
 *    0.14 (Resize(S) + CenterCrop) on that float image, printed to 4
 *    decimals (python3 -c: Image.fromarray(a, mode="F").resize((w, h),
 *    Image.BILINEAR), T.Compose([T.Resize(S), T.CenterCrop((h, w))])(img)). */
static float f57(int y, int x) { return (float)((37 * y + 23 * x + 11 * x * y) % 251); }

static const float pil_3x4[] = {
    30.3741f, 73.5029f,  124.4971f, 167.6259f, 97.5714f,  151.9822f,
    94.2222f, 125.2064f, 157.9388f, 116.8343f, 125.3029f, 147.1021f,
};
static const float pil_8x11[] = {
    0.0000f,   10.4545f,  25.0909f,  39.7273f,  54.3636f,  69.0000f,  83.6364f,  98.2727f,
    112.9091f, 127.5455f, 138.0000f, 16.1875f,  28.8295f,  46.5284f,  64.2273f,  81.9261f,
    99.6250f,  117.3239f, 135.0227f, 152.7216f, 170.4205f, 183.0625f, 39.3125f,  55.0795f,
    77.1534f,  99.2273f,  121.3011f, 143.3750f, 155.4659f, 171.8352f, 193.9091f, 215.9830f,
    231.7500f, 62.4375f,  81.3295f,  107.7784f, 134.2273f, 160.6761f, 187.1250f, 103.7614f,
    67.4602f,  93.9091f,  120.3580f, 139.2500f, 85.5625f,  107.5795f, 138.4034f, 169.2273f,
    171.5284f, 152.4375f, 73.4489f,  41.5227f,  72.3466f,  103.1705f, 125.1875f, 108.6875f,
    133.8295f, 169.0284f, 204.2273f, 153.8580f, 39.3125f,  64.5284f,  94.0227f,  129.2216f,
    164.4205f, 189.5625f, 131.8125f, 160.0795f, 186.8182f, 136.5455f, 97.6818f,  67.3750f,
    106.9489f, 146.5227f, 186.0966f, 148.6591f, 112.7500f, 148.0000f, 178.4545f, 198.2727f,
    81.1818f,  55.3636f,  98.0000f,  140.6364f, 183.2727f, 225.9091f, 131.6364f, 48.0000f,
};
static const float tv_short4_crop4[] = {
    17.8333f,  49.3056f,  86.5000f,  123.6944f, 65.2778f,  112.4352f, 149.1515f, 119.3148f,
    112.7222f, 175.5648f, 111.0227f, 73.1019f,  160.1667f, 134.1111f, 91.9091f,  173.3055f,
};
static const float tv_short4_crop3[] = {
    49.3056f, 86.5000f, 123.6944f, 112.4352f, 149.1515f, 119.3148f, 175.5648f, 111.0227f, 73.1019f,
};
static const float tv_short6_crop4x6[] = {
    53.1406f,  80.4844f,  107.8281f, 135.1719f, 162.5156f, 189.8594f, 91.4219f,  126.7865f,
    162.1510f, 133.4583f, 86.4635f,  121.8281f, 129.7031f, 173.0885f, 157.6458f, 91.2188f,
    52.2448f,  95.6302f,  167.9844f, 176.2500f, 102.1562f, 71.2031f,  122.6094f, 162.2500f,
};
static const float hand_up_4x4[] = {
    0, 25, 75, 100, 50, 60, 80, 90, 150, 130, 90, 70, 200, 165, 95, 60,
};
static const float hand_down_1x2[] = {50 / 1.75f, 220 / 1.75f};
static const float same_2x2[] = {0, 100, 200, 60};

static void resize_against_hand_and_pil(void) {
    unsigned char img57[5 * 7], img22[4] = {0, 100, 200, 60}, img14[4] = {0, 40, 80, 200};
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++)
            img57[y * 7 + x] = (unsigned char)f57(y, x);
    const char *d57 = mk("resize/i57"), *d22 = mk("resize/i22"), *d14 = mk("resize/i14");
    CHECK(d57 && d22 && d14);
    CHECK(write_pnm(path_in(d57, "a.pgm"), 7, 5, 1, img57) == 0);
    CHECK(write_png(path_in(d22, "a.png"), 2, 2, 0, img22) == 0);
    CHECK(write_pnm(path_in(d14, "a.pgm"), 4, 1, 1, img14) == 0);
    static const struct {
        const char *dir;
        int64_t h, w, resize_short;
        const float *want;
        double tol;
    } cases[] = {
        {"resize/i57", 3, 4, 0, pil_3x4, 2e-3},
        {"resize/i57", 8, 11, 0, pil_8x11, 2e-3},
        /* 4x5 resized; crop 4x4 at (0, round(0.5) = 0), 3x3 at (round(0.5) = 0, 1) */
        {"resize/i57", 0, 0, 4, tv_short4_crop4, 2e-3},
        {"resize/i57", 3, 3, 4, tv_short4_crop3, 2e-3},
        {"resize/i57", 4, 6, 6, tv_short6_crop4x6, 2e-3}, /* 6x8 resized, crop at (1, 1) */
        {"resize/i22", 4, 4, 0, hand_up_4x4, 1e-4},
        {"resize/i14", 1, 2, 0, hand_down_1x2, 1e-4},
        {"resize/i22", 2, 2, 0, same_2x2, 0}, /* same size */
    };
    for (size_t k = 0; k < QF_ARRAY_LEN(cases); k++) {
        qf_dataset_options o = {.height = cases[k].h,
                                .width = cases[k].w,
                                .resize_short = cases[k].resize_short,
                                .scale = 1};
        qf_dataset *d;
        qf_err e;
        CHECK_MSG(qf_dataset_open(tmp_path(cases[k].dir), NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
        float x[128];
        int64_t oh = d->dims[1], ow = d->dims[2];
        qf_status st = oh * ow <= 128 ? qf_dataset_fill(d, 0, 1, x, NULL, &e) : QF_ERR_SHAPE;
        qf_dataset_free(d);
        CHECK_MSG(st == QF_OK, "case %zu: %s", k, e.msg);
        int64_t wh = cases[k].h ? cases[k].h : cases[k].resize_short;
        int64_t ww = cases[k].w ? cases[k].w : cases[k].resize_short;
        CHECK(oh == wh && ow == ww);
        for (int64_t i = 0; i < oh * ow; i++)
            CHECK_MSG(fabs(x[i] - cases[k].want[i]) <= cases[k].tol,
                      "case %zu at %lld: %.5f vs %.5f", k, (long long)i, x[i], cases[k].want[i]);
    }
    /* an RGB image resizes each channel alike: channels v, 255 - v, v give the
     * gray result r, 255 - r, r (the weights sum to 1) */
    const char *drgb = mk("resize/rgb");
    unsigned char rgb[5 * 7 * 3];
    for (int i = 0; i < 35; i++)
        for (int c = 0; c < 3; c++)
            rgb[i * 3 + c] = (unsigned char)(c == 1 ? 255 - img57[i] : img57[i]);
    CHECK(drgb && write_png(path_in(drgb, "a.png"), 7, 5, 2, rgb) == 0);
    qf_dataset_options o = {.height = 3, .width = 4, .scale = 1, .out_nhwc = true};
    qf_dataset *d;
    qf_err e;
    CHECK_MSG(qf_dataset_open(drgb, NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
    float x[36];
    qf_status st = qf_dataset_fill(d, 0, 1, x, NULL, &e);
    qf_dataset_free(d);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    for (int i = 0; i < 12; i++)
        for (int c = 0; c < 3; c++)
            CHECK_NEAR(x[i * 3 + c], c == 1 ? 255 - pil_3x4[i] : pil_3x4[i], 2e-3);
}

/* ---- laziness ----------------------------------------------------------------------------------
 */
static void lazy_fill_of_a_sub_range(void) {
    const char *root = mk("lazy");
    CHECK(root);
    char names[5][16];
    for (int i = 0; i < 5; i++) {
        unsigned char px[4] = {(unsigned char)(10 * i), (unsigned char)(10 * i + 1),
                               (unsigned char)(10 * i + 2), (unsigned char)(10 * i + 3)};
        snprintf(names[i], sizeof names[i], "img%d.pgm", i);
        CHECK(write_pnm(path_in(root, names[i]), 2, 2, 1, px) == 0);
    }
    qf_dataset_options o = {.scale = 1};
    qf_dataset *d;
    qf_err e;
    CHECK_MSG(qf_dataset_open(root, NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
    /* after open: remove image 0, truncate image 4; only their own fills fail */
    unlink(path_in(root, names[0]));
    CHECK(write_bytes(path_in(root, names[4]), "P5\n2 2\n255\n\x01", 12) == 0);
    float x[3 * 4], z[2 * 4];
    int32_t lab[3] = {7, 7, 7};
    qf_status st_mid = qf_dataset_fill(d, 1, 3, x, lab, &e);
    char msg_mid[QF_ERR_MSG_LEN];
    snprintf(msg_mid, sizeof msg_mid, "%s", e.msg);
    qf_err e0, e4;
    float y[4];
    qf_status st0 = qf_dataset_fill(d, 0, 1, y, NULL, &e0);
    qf_status st4 = qf_dataset_fill(d, 3, 2, z, NULL, &e4);
    qf_status st_range = qf_dataset_fill(d, 4, 2, z, NULL, &e);
    qf_dataset_free(d);
    CHECK_MSG(st_mid == QF_OK, "%s", msg_mid);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(lab[i], -1);
    for (int i = 0; i < 12; i++)
        CHECK_NEAR(x[i], 10 * (1 + i / 4) + i % 4, 0);
    CHECK(st0 == QF_ERR_IO && strstr(e0.msg, names[0]));
    CHECK_MSG(st4 == QF_ERR_FORMAT && strstr(e4.msg, names[4]) && strstr(e4.msg, "truncated"), "%s",
              e4.msg);
    CHECK(st_range == QF_ERR_INVALID_ARG);

    /* limit: files past it are never opened, so a broken one there is harmless */
    CHECK(write_bytes(path_in(root, names[0]), "not an image", 12) == 0);
    qf_dataset_options lim = {.limit = 2};
    const char *cls = mk("lazy_cls/c");
    CHECK(cls && write_pnm(path_in(cls, "a.pgm"), 2, 1, 1, (const unsigned char *)"\x05\x06") == 0);
    CHECK(write_pnm(path_in(cls, "b.pgm"), 2, 1, 1, (const unsigned char *)"\x07\x08") == 0);
    CHECK(write_bytes(path_in(cls, "c.pgm"), "garbage", 7) == 0);
    CHECK_MSG(qf_dataset_open(tmp_path("lazy_cls"), NULL, &lim, &d, &e) == QF_OK, "%s", e.msg);
    int64_t n = d->n;
    qf_dataset_free(d);
    CHECK_EQ_INT(n, 2);
    CHECK(qf_dataset_open(tmp_path("lazy_cls"), NULL, NULL, &d, &e) == QF_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "c.pgm") && strstr(e.msg, "not a readable image"), "%s", e.msg);
}

/* ---- detection next to array datasets ---------------------------------------------------------
 */
static void detection_keeps_idx_and_npy_directories(void) {
    /* IDX pair (2 images 2x2, labels 1 0) plus a subfolder: still an IDX dataset */
    const char *idx = mk("idxdir/raw");
    CHECK(idx);
    const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                    0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
    const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    CHECK(write_bytes(tmp_path("idxdir/t10k-images-idx3-ubyte"), images, sizeof images) == 0);
    CHECK(write_bytes(tmp_path("idxdir/t10k-labels-idx1-ubyte"), labels, sizeof labels) == 0);
    CHECK(!qf_image_folder_detect(tmp_path("idxdir")));
    qf_dataset *d;
    qf_err e;
    CHECK_MSG(qf_dataset_open(tmp_path("idxdir"), NULL, NULL, &d, &e) == QF_OK, "%s", e.msg);
    float x[8];
    int32_t lab[2];
    qf_status st = qf_dataset_fill(d, 0, 2, x, lab, &e);
    int ok = d->folder == NULL && d->num_classes == 2 && d->dims[0] == 1;
    qf_dataset_free(d);
    CHECK(st == QF_OK && ok && lab[0] == 1 && lab[1] == 0);
    CHECK_NEAR(x[7], 8 / 255.0, 1e-7);
    /* image-folder options on an array dataset are refused, not ignored */
    qf_dataset_options o = {.height = 4, .width = 4};
    CHECK(qf_dataset_open(tmp_path("idxdir"), NULL, &o, &d, &e) == QF_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.msg, "image folders only"), "%s", e.msg);

    /* NHWC output works for array datasets too: NPY [2,3,2,2] */
    const char *npy = mk("npydir");
    CHECK(npy);
    float v[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++)
        v[i] = (float)i;
    int32_t l2[2] = {0, 1};
    qf_tensor ti = {.dtype = QF_DT_F32, .rank = 4, .dims = {2, 3, 2, 2}, .data = v};
    qf_tensor tl = {.dtype = QF_DT_I32, .rank = 1, .dims = {2}, .data = l2};
    CHECK(qf_npy_write(path_in(npy, "images.npy"), &ti, &e) == QF_OK);
    CHECK(qf_npy_write(path_in(npy, "labels.npy"), &tl, &e) == QF_OK);
    qf_dataset_options on = {.out_nhwc = true, .n_norm = 3, .mean = {1, 2, 3}, .std = {1, 2, 4}};
    CHECK_MSG(qf_dataset_open(npy, NULL, &on, &d, &e) == QF_OK, "%s", e.msg);
    float y[24];
    st = qf_dataset_fill(d, 0, 2, y, NULL, &e);
    int dims_ok = d->dims[0] == 2 && d->dims[1] == 2 && d->dims[2] == 3;
    qf_dataset_free(d);
    CHECK(st == QF_OK && dims_ok);
    static const float mean[3] = {1, 2, 3}, sd[3] = {1, 2, 4};
    for (int n = 0; n < 2; n++)
        for (int p = 0; p < 4; p++)
            for (int c = 0; c < 3; c++)
                CHECK_NEAR(y[(n * 4 + p) * 3 + c], (v[(n * 3 + c) * 4 + p] - mean[c]) / sd[c],
                           1e-6);
    /* a directory of images at its top is an image folder */
    CHECK(qf_image_folder_detect(tmp_path("formats")));
    CHECK(qf_image_folder_detect(tmp_path("classes")));
}

/* ---- errors ---------------------------------------------------------------------------------- */
static void empty_mixed_and_bad_folders(void) {
    qf_dataset *d;
    qf_err e;
    const char *empty = mk("empty");
    CHECK(empty && write_bytes(path_in(empty, ".keep"), "", 0) == 0);
    CHECK(qf_dataset_open(empty, NULL, NULL, &d, &e) == QF_ERR_IO);
    CHECK_MSG(strstr(e.msg, empty) && strstr(e.msg, "no images found"), "%s", e.msg);
    CHECK(mk("empty_classes/a") && mk("empty_classes/b"));
    CHECK(qf_dataset_open(tmp_path("empty_classes"), NULL, NULL, &d, &e) == QF_ERR_IO);
    CHECK_MSG(strstr(e.msg, "no images found"), "%s", e.msg);

    const char *mixed = mk("mixed/c");
    unsigned char px[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    CHECK(mixed && write_pnm(path_in(mixed, "a.pgm"), 2, 2, 1, px) == 0);
    CHECK(write_pnm(path_in(mixed, "b.pgm"), 3, 3, 1, px) == 0);
    CHECK(qf_dataset_open(tmp_path("mixed"), NULL, NULL, &d, &e) == QF_ERR_SHAPE);
    CHECK_MSG(strstr(e.msg, "b.pgm") && strstr(e.msg, "--size"), "%s", e.msg);
    qf_dataset_options sized = {.height = 2, .width = 2, .scale = 1};
    CHECK_MSG(qf_dataset_open(tmp_path("mixed"), NULL, &sized, &d, &e) == QF_OK, "%s", e.msg);
    float x[8];
    qf_status st = qf_dataset_fill(d, 0, 2, x, NULL, &e);
    qf_dataset_free(d);
    CHECK(st == QF_OK);
    /* 2x2 unchanged; 3x3 (v = 3y + x + 1) -> 2x2: per axis, outputs weigh the
     * source as (5/8, 3/8, 0) and (0, 3/8, 5/8) (triangle of half-width 1.5,
     * renormalized at the edge), so rows/cols land at 3/8 and 13/8 */
    static const float want[8] = {1, 2, 3, 4, 2.5f, 3.75f, 6.25f, 7.5f};
    for (int i = 0; i < 8; i++)
        CHECK_NEAR(x[i], want[i], 1e-5);

    const char *txt = mk("withtext/c");
    CHECK(txt && write_pnm(path_in(txt, "a.pgm"), 2, 2, 1, px) == 0);
    CHECK(write_bytes(path_in(txt, "notes.txt"), "hello there", 11) == 0);
    CHECK(qf_dataset_open(tmp_path("withtext"), NULL, NULL, &d, &e) == QF_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "notes.txt"), "%s", e.msg);

    CHECK(mk("nested/c/deeper"));
    CHECK(qf_dataset_open(tmp_path("nested"), NULL, NULL, &d, &e) == QF_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "deeper") && strstr(e.msg, "inside a class folder"), "%s", e.msg);
}

/* Every prefix of a valid file must fail (on open or on fill) naming the
 * file; the whole file must load. stb alone would accept many of these. */
static void truncated_at_every_length(void) {
    enum { W = 4, H = 3 };
    unsigned char rgb[W * H * 3], g[W * H];
    fill_pixels(rgb, 9, W, H, 3);
    fill_pixels(g, 9, W, H, 1);
    static const char *names[] = {"img.png", "img_stb.png", "img.jpg",  "img.bmp",
                                  "img.pgm", "img.ppm",     "img_g.jpg"};
    char src[600];
    CHECK(mk("trunc_src"));
    snprintf(src, sizeof src, "%s", tmp_path("trunc_src"));
    CHECK(write_png(path_in(src, names[0]), W, H, 2, rgb) == 0);
    CHECK(stbi_write_png(path_in(src, names[1]), W, H, 3, rgb, W * 3) != 0);
    CHECK(write_bytes(path_in(src, names[2]), jpeg_prog_4x3, sizeof jpeg_prog_4x3) == 0);
    CHECK(stbi_write_bmp(path_in(src, names[3]), W, H, 3, rgb) != 0);
    CHECK(write_pnm(path_in(src, names[4]), W, H, 1, g) == 0);
    CHECK(write_pnm(path_in(src, names[5]), W, H, 3, rgb) == 0);
    CHECK(write_bytes(path_in(src, names[6]), jpeg_gray_6x5, sizeof jpeg_gray_6x5) == 0);
    for (size_t f = 0; f < QF_ARRAY_LEN(names); f++) {
        size_t len;
        unsigned char *full = read_all(path_in(src, names[f]), &len);
        CHECK(full);
        char sub[64];
        char dir[600], root[600];
        snprintf(sub, sizeof sub, "trunc_%zu/c", f);
        CHECK(mk(sub));
        snprintf(dir, sizeof dir, "%s", tmp_path(sub));
        snprintf(sub, sizeof sub, "trunc_%zu", f);
        snprintf(root, sizeof root, "%s", tmp_path(sub));
        int bad = -1;
        char bad_msg[QF_ERR_MSG_LEN] = "";
        for (size_t n = 0; n <= len && bad < 0; n++) {
            if (write_bytes(path_in(dir, names[f]), full, n) != 0) {
                bad = (int)n;
                break;
            }
            qf_dataset *d = NULL;
            qf_err e = {0};
            float x[3 * 6 * 5];
            qf_status st = qf_dataset_open(root, NULL, NULL, &d, &e);
            if (st == QF_OK) st = qf_dataset_fill(d, 0, 1, x, NULL, &e);
            qf_dataset_free(d);
            bool want_ok = n == len;
            if ((st == QF_OK) != want_ok || (!want_ok && !strstr(e.msg, names[f]))) {
                bad = (int)n;
                snprintf(bad_msg, sizeof bad_msg, "%s", e.msg);
            }
        }
        free(full);
        CHECK_MSG(bad < 0, "%s cut to %d of %zu bytes: '%s'", names[f], bad, len, bad_msg);
    }
}

static void hostile_headers(void) {
    const char *dir = mk("hostile/c");
    const char *root = tmp_path("hostile");
    CHECK(dir);
    unsigned char g[4] = {1, 2, 3, 4};
    static const struct {
        const char *hdr; /* PGM header + 4 pixel bytes, or NULL: a PNG */
        uint32_t png_w, png_h;
        qf_status open_st, fill_st;
        const char *msg;
    } cases[] = {
        {"P5\n20000 20000\n255\n", 0, 0, QF_ERR_FORMAT, QF_OK, "too large"},
        {"P5\n16384 16384\n255\n", 0, 0, QF_OK, QF_ERR_FORMAT, "truncated pixel data"},
        {"P5\n0 4\n255\n", 0, 0, QF_ERR_FORMAT, QF_OK, "h.pgm"},
        {"P5\n4294967297 1\n255\n", 0, 0, QF_ERR_FORMAT, QF_OK, "h.pgm"},
        {NULL, 20000, 2, QF_ERR_FORMAT, QF_OK, "h.png"},
        {NULL, 0x7fffffffu, 0x7fffffffu, QF_ERR_FORMAT, QF_OK, "h.png"},
        {NULL, 2, 3, QF_OK, QF_ERR_FORMAT, "h.png"}, /* IHDR 2x3, data for 2x2 */
    };
    for (size_t k = 0; k < QF_ARRAY_LEN(cases); k++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -f '%s'/*", dir);
        CHECK(system(cmd) == 0);
        if (cases[k].hdr) {
            unsigned char b[64];
            size_t n = strlen(cases[k].hdr);
            memcpy(b, cases[k].hdr, n);
            memcpy(b + n, g, 4);
            CHECK(write_bytes(path_in(dir, "h.pgm"), b, n + 4) == 0);
        } else {
            CHECK(write_png_ex(path_in(dir, "h.png"), 2, 2, 0, g, cases[k].png_w, cases[k].png_h) ==
                  0);
        }
        qf_dataset *d = NULL;
        qf_err e = {0};
        float x[4];
        qf_status st = qf_dataset_open(root, NULL, NULL, &d, &e);
        qf_status st2 = QF_OK;
        if (st == QF_OK) st2 = qf_dataset_fill(d, 0, 1, x, NULL, &e); /* 1x1 sample at most */
        int64_t numel = d ? d->sample_numel : 0;
        qf_dataset_free(d);
        CHECK_MSG(st == cases[k].open_st && st2 == cases[k].fill_st, "case %zu: %d %d %s", k, st,
                  st2, e.msg);
        CHECK_MSG(strstr(e.msg, cases[k].msg), "case %zu: %s", k, e.msg);
        (void)numel;
    }
}

static void bad_options(void) {
    const char *root = mk("badopt");
    unsigned char rgb[2 * 2 * 3] = {0};
    CHECK(root && write_pnm(path_in(root, "a.ppm"), 2, 2, 3, rgb) == 0);
    static const struct {
        qf_dataset_options o;
        const char *msg;
    } cases[] = {
        {{.channels = 2}, "channels must be 1 or 3"},
        {{.height = 4}, "both height and width"},
        {{.height = 20000, .width = 2}, "image sizes must be in"},
        {{.width = -1, .height = 2}, "image sizes must be in"},
        {{.resize_short = 4, .height = 5, .width = 4}, "does not fit"},
        {{.n_norm = 2, .mean = {0, 0}, .std = {1, 1}}, "2 mean/std values"},
        {{.n_norm = 1, .mean = {0}, .std = {0}}, "std[0] must be non-zero"},
        {{.split = "dev"}, "unknown split"},
    };
    for (size_t k = 0; k < QF_ARRAY_LEN(cases); k++) {
        qf_dataset *d = NULL;
        qf_err e = {0};
        qf_status st = qf_dataset_open(root, NULL, &cases[k].o, &d, &e);
        qf_dataset_free(d);
        CHECK_MSG(st == QF_ERR_INVALID_ARG && strstr(e.msg, cases[k].msg), "case %zu: %s", k,
                  e.msg);
    }
    /* a labels file makes no sense with a folder */
    qf_dataset *d;
    qf_err e;
    CHECK(qf_dataset_open(root, tmp_path("badopt/a.ppm"), NULL, &d, &e) == QF_ERR_INVALID_ARG);
}

/* ---- allocation failures ----------------------------------------------------------------------
 */
static int fail_after;
static void *failing_alloc(void *u, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return malloc(n ? n : 1);
}
static void *failing_realloc(void *u, void *p, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return realloc(p, n ? n : 1);
}
static void plain_free(void *u, void *p) {
    (void)u;
    free(p);
}

/* Fail the Nth allocation for every N until open + fill succeed: each
 * failure must be a clean QF_ERR_NOMEM (leaks show up under ASan). */
static void oom_every_allocation(void) {
    const char *a = mk("oom/a"), *b = mk("oom/b");
    CHECK(a && b);
    unsigned char rgb[6 * 5 * 3];
    fill_pixels(rgb, 3, 6, 5, 3);
    CHECK(write_png(path_in(a, "1.png"), 6, 5, 2, rgb) == 0);
    CHECK(write_bytes(path_in(a, "2.jpg"), jpeg_prog_4x3, sizeof jpeg_prog_4x3) == 0);
    CHECK(write_pnm(path_in(b, "3.ppm"), 6, 5, 3, rgb) == 0);
    qf_dataset_options o = {.resize_short = 4, .height = 3, .width = 3, .out_nhwc = true};
    qf_allocator al = {failing_alloc, failing_realloc, plain_free, NULL};
    qf_status st = QF_ERR_NOMEM;
    int n;
    for (n = 0; n < 5000 && st != QF_OK; n++) {
        fail_after = n;
        qf_set_allocator(&al);
        qf_dataset *d = NULL;
        qf_err e = {0};
        float x[3 * 27];
        int32_t lab[3];
        st = qf_dataset_open(tmp_path("oom"), NULL, &o, &d, &e);
        if (st == QF_OK) st = qf_dataset_fill(d, 0, 3, x, lab, &e);
        qf_dataset_free(d);
        qf_set_allocator(NULL);
        CHECK_MSG(st == QF_OK || st == QF_ERR_NOMEM, "fail at %d: status %d: %s", n, st, e.msg);
    }
    CHECK(st == QF_OK && n > 10);
}

static void cleanup_tmp(void) {
    /* remove what the cases wrote; the check keeps this an honest case */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    CHECK(tmp_dir[0] && system(cmd) == 0);
    CHECK(access(tmp_dir, F_OK) != 0);
}

QT_MAIN(QT_CASE(class_folders_labels_and_order), QT_CASE(every_format_decodes_to_written_pixels),
        QT_CASE(grayscale_and_rgb_conversion), QT_CASE(sixteen_bit_samples),
        QT_CASE(scale_mean_std_nchw_nhwc), QT_CASE(resize_against_hand_and_pil),
        QT_CASE(lazy_fill_of_a_sub_range), QT_CASE(detection_keeps_idx_and_npy_directories),
        QT_CASE(empty_mixed_and_bad_folders), QT_CASE(truncated_at_every_length),
        QT_CASE(hostile_headers), QT_CASE(bad_options), QT_CASE(oom_every_allocation),
        QT_CASE(cleanup_tmp))
