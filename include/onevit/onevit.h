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

typedef struct {
    int threads; /* threads in all; 0 = chosen per model (at most all cores) */
    int streams; /* 0 = chosen for the hint (latency: one) */
    int hint;    /* 0 latency (one stream using every thread), 1 throughput (several streams) */
} onevit_options;

typedef struct {
    int index;         /* class index, 0 .. num_classes - 1 */
    float prob;        /* softmax probability */
    const char* label; /* the class name; "" when the model file has no labels. Owned by the
                          model: valid until onevit_model_free. */
} onevit_prediction;

/* Maps and validates the .ovit file at `path` and prepares its weights.
 * `options` may be NULL for the defaults {0, 0, 0}. On success *out is the new
 * model (free it with onevit_model_free); on failure *out is set to NULL. */
int onevit_model_load(const char* path, const onevit_options* options, onevit_model** out);

/* Frees the model and everything it owns (labels included). NULL is allowed. */
void onevit_model_free(onevit_model* model);

/* The input the model expects: channels × height × width floats per image.
 * Each output pointer may be NULL when that value is not wanted. */
int onevit_model_input_shape(const onevit_model* model, int* channels, int* height, int* width);

/* The number of classes (0 for a model without a classifier, which gives only
 * embeddings), or -1 when model is NULL. */
int onevit_model_num_classes(const onevit_model* model);

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
int onevit_model_classify_file(const onevit_model* model, const char* image_path, int top_k,
                               onevit_prediction* out);

/* The message of this thread's most recent failed call ("" if none has
 * failed). Never NULL; valid until this thread's next failing call. */
const char* onevit_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* ONEVIT_ONEVIT_H */
