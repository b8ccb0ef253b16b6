/* The onevit C API: C99, for C programs and for any language's foreign-function
 * interface (ctypes, C#, Rust, Swift...). #include <onevit/onevit.h> and link
 * with `pkg-config --cflags --libs onevit` (libonevit.so, which exports only
 * these functions; `pkg-config --static --libs onevit` adds what the static
 * libonevit.a needs, for linking with -l:libonevit.a).
 *
 * Every function that can fail returns an int status: ONEVIT_OK (0) on
 * success, one of the non-zero ONEVIT_ERROR_* codes otherwise, and then
 * onevit_last_error() says what went wrong in one line. No C++ exception ever
 * leaves these functions. A model may be used from many threads at once (all
 * the functions that take a const onevit_model* may run concurrently); only
 * onevit_model_free must not overlap any other use of that model. */
#ifndef ONEVIT_ONEVIT_H
#define ONEVIT_ONEVIT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
enum {
    ONEVIT_OK = 0,
    ONEVIT_ERROR_ARGUMENT = 1,      /* a NULL pointer or a value out of range was passed */
    ONEVIT_ERROR_FAILED = 2,        /* the model file or image is missing, unreadable or invalid, ... */
    ONEVIT_ERROR_OUT_OF_MEMORY = 3, /* an allocation failed */
    ONEVIT_ERROR_INTERNAL = 4       /* an unexpected failure inside onevit (a bug: please report it) */
};

/* A loaded model: weights prepared once, then run any number of times. */
typedef struct onevit_model onevit_model;

/* Hints: what onevit optimises for. */
enum {
    ONEVIT_HINT_LATENCY = 0,   /* one stream, for one request at a time */
    ONEVIT_HINT_THROUGHPUT = 1 /* several streams, each running whole requests, for many at once */
};

/* How onevit_model_load_with_options loads a model. Versioned: struct_size is
 * the size of the struct as the caller's onevit.h defines it, so that later
 * versions can append fields and still take the structs of programs built
 * before them. Start from ONEVIT_LOAD_OPTIONS_INIT (or, from another
 * language's FFI, zeros with struct_size set): every zero is a default. */
typedef struct {
    size_t struct_size;    /* sizeof(onevit_load_options) */
    int threads;           /* threads in all; 0 = chosen per model (at most all cores) */
    int streams;           /* 0 = chosen for the hint (latency: one) */
    int hint;              /* ONEVIT_HINT_LATENCY (default) or ONEVIT_HINT_THROUGHPUT */
    const char* precision; /* "f32", "bf16", "int8" or "auto" (the fastest this CPU runs natively);
                              NULL = the precision the model file was written for */
    int batch;             /* the batch size threads and streams are chosen for; 0 = 1 */
} onevit_load_options;

#define ONEVIT_LOAD_OPTIONS_INIT \
    { sizeof(onevit_load_options), 0, 0, ONEVIT_HINT_LATENCY, NULL, 0 }

/* The original options of onevit_model_load, kept for the programs that use
 * them (they cannot grow: new settings come to onevit_load_options only). */
typedef struct {
    int threads; /* threads in all; 0 = chosen per model (at most all cores) */
    int streams; /* 0 = chosen for the hint (latency: one) */
    int hint;    /* ONEVIT_HINT_LATENCY or ONEVIT_HINT_THROUGHPUT */
} onevit_options;

typedef struct {
    int index;         /* class index, 0 .. num_classes - 1 */
    float prob;        /* softmax probability */
    const char* label; /* the class name; "" when the model file has no labels. Owned by the
                          model: valid until onevit_model_free. */
} onevit_prediction;

/* Maps and validates the .ovit file at `path` and prepares its weights.
 * `options` may be NULL for the defaults (ONEVIT_LOAD_OPTIONS_INIT). On success
 * *out is the new model (free it with onevit_model_free); on failure *out is
 * set to NULL. A struct_size this library does not know, or a bad value, is
 * ONEVIT_ERROR_ARGUMENT naming the field. */
int onevit_model_load_with_options(const char* path, const onevit_load_options* options, onevit_model** out);

/* onevit_model_load_with_options with the original options (NULL: the defaults
 * {0, 0, 0}); the precision is the model file's. */
int onevit_model_load(const char* path, const onevit_options* options, onevit_model** out);

/* Frees the model and everything it owns (labels included). NULL is allowed. */
void onevit_model_free(onevit_model* model);

/* The input the model expects: channels × height × width floats per image.
 * Each output pointer may be NULL when that value is not wanted. */
int onevit_model_input_shape(const onevit_model* model, int* channels, int* height, int* width);

/* The number of classes (0 for a model without a classifier, which gives only
 * embeddings), or -1 when model is NULL. */
int onevit_model_num_classes(const onevit_model* model);

/* The precision the model computes in: "f32", "bf16" or "int8" (static
 * strings); NULL when model is NULL. */
const char* onevit_model_precision(const onevit_model* model);

/* Threads the model runs on (all streams together), and its streams; -1 when model is NULL. */
int onevit_model_threads(const onevit_model* model);
int onevit_model_streams(const onevit_model* model);

/* Floats per image that onevit_model_run_into writes: the number of classes, or,
 * for a model without a classifier, its embedding size; -1 when model is NULL. */
int onevit_model_output_size(const onevit_model* model);

/* Runs the preprocessed images in `input` (input_count floats: a whole number
 * of images of C × H × W floats, NCHW, as onevit_model_input_shape says) and
 * writes batch × onevit_model_output_size floats, row-major, straight into
 * `output`, which the caller owns and which holds output_capacity floats (its
 * floats past those are left alone). The run allocates no result of its own. */
int onevit_model_run_into(const onevit_model* model, const float* input, size_t input_count, float* output,
                          size_t output_capacity);

/* Runs `batch` (>= 1) preprocessed images: `input` holds batch × C × H × W
 * floats (NCHW, as onevit_model_input_shape says), `logits` receives
 * batch × num_classes floats, row-major. */
int onevit_model_run(const onevit_model* model, const float* input, int batch, float* logits);

/* The width of the model's image embedding (its dim, or the width of its pool_proj layer), or -1 when model is NULL. */
int onevit_model_embedding_size(const onevit_model* model);

/* Like onevit_model_run, but `embedding` receives batch × embedding_size floats:
 * each image's pooled embedding (the classifier's input; timm's pre-logits). */
int onevit_model_embed(const onevit_model* model, const float* input, int batch, float* embedding);

/* Decodes the JPEG or PNG file at `image_path`, preprocesses it as the model
 * file says and classifies it: out[0 .. top_k-1] receive the top_k (>= 1)
 * most probable classes, most probable first. When top_k exceeds the number
 * of classes, the entries past it are {index -1, prob 0, label ""}. */
int onevit_model_classify_file(const onevit_model* model, const char* image_path, int top_k, onevit_prediction* out);

/* The message of this thread's most recent failed call ("" if none has
 * failed). Never NULL; valid until this thread's next failing call. */
const char* onevit_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* ONEVIT_ONEVIT_H */
