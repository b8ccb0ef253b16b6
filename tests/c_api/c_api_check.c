/* The C API from a C99 program, built against the installed package by
 * tests/c_api_test.py (which compares what this prints with `onevit classify`
 * and `onevit infer`).
 *
 *     c_api_check MODEL IMAGE...
 *
 * stdout: for each IMAGE, TOP_K lines "IMAGE<TAB>rank<TAB>index<TAB>prob<TAB>label"
 * (or one line "IMAGE<TAB>error<TAB>status<TAB>message"); then "logits<TAB>b<TAB>c<TAB>value"
 * for each logit of onevit_model_run on the batch made by fill_input.
 * stderr: one line per failed check of the error cases; the exit status is 1 if any failed. */
#include <onevit/onevit.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_K 3
#define RUN_BATCH 2

static int failed_checks = 0;

static void check(int ok, const char* what) {
    if (!ok) {
        fprintf(stderr, "FAIL: %s (last error: %s)\n", what, onevit_last_error());
        ++failed_checks;
    }
}

/* A call failed with `status` and a last error naming `function` and containing `fragment`. */
static void check_error(int got, int status, const char* function, const char* fragment, const char* what) {
    const char* message = onevit_last_error();
    check(got == status, what);
    check(strncmp(message, function, strlen(function)) == 0 && strstr(message, fragment) != NULL, what);
}

/* Values exact in float, the same in any language: tests/c_api_test.py builds the same input. */
static void fill_input(float* input, size_t count) {
    size_t i;
    for (i = 0; i < count; ++i) input[i] = (float)((i * 7919u) % 256u) / 128.0f - 1.0f;
}

static void print_classes(const char* image, const onevit_prediction* top, int count) {
    int rank;
    for (rank = 0; rank < count; ++rank)
        printf("%s\t%d\t%d\t%.9g\t%s\n", image, rank + 1, top[rank].index, top[rank].prob, top[rank].label);
}

static void check_load_errors(const char* model_path) {
    onevit_model* model = (onevit_model*)&failed_checks; /* must be reset to NULL */
    onevit_options options = {0, 0, 0};

    check_error(onevit_model_load(NULL, NULL, &model), ONEVIT_ERROR_ARGUMENT, "onevit_model_load", "path",
                "load(NULL path)");
    check(model == NULL, "load(NULL path) sets *out to NULL");
    check_error(onevit_model_load(model_path, NULL, NULL), ONEVIT_ERROR_ARGUMENT, "onevit_model_load", "out",
                "load(NULL out)");
    check_error(onevit_model_load("no/such/model.ovit", NULL, &model), ONEVIT_ERROR_FAILED, "onevit_model_load",
                "no/such/model.ovit", "load(missing file)");
    check(model == NULL, "load(missing file) sets *out to NULL");
    options.hint = 2;
    check_error(onevit_model_load(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT, "onevit_model_load", "hint",
                "load(hint 2)");
    options.hint = 0;
    options.threads = -1;
    check_error(onevit_model_load(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT, "onevit_model_load", "threads",
                "load(threads -1)");
    options.threads = 1;
    options.streams = 2;
    check_error(onevit_model_load(model_path, &options, &model), ONEVIT_ERROR_FAILED, "onevit_model_load", "streams",
                "load(2 streams on 1 thread)");
}

static void check_call_errors(const onevit_model* model, const char* image) {
    int channels = 0, height = 0, width = 0;
    int classes = onevit_model_num_classes(model);
    size_t input_size;
    float* input;
    float* logits = malloc(sizeof(float) * (size_t)classes);
    onevit_prediction top[TOP_K];

    check(onevit_model_input_shape(model, &channels, NULL, NULL) == ONEVIT_OK && channels > 0,
          "input_shape with NULL outputs");
    check(onevit_model_input_shape(model, &channels, &height, &width) == ONEVIT_OK, "input_shape");
    input_size = (size_t)channels * (size_t)height * (size_t)width;
    input = calloc(input_size, sizeof(float));
    check_error(onevit_model_input_shape(NULL, &channels, &height, &width), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_input_shape", "model", "input_shape(NULL model)");
    check(onevit_model_num_classes(NULL) == -1, "num_classes(NULL) is -1");

    check_error(onevit_model_run(NULL, input, 1, logits), ONEVIT_ERROR_ARGUMENT, "onevit_model_run", "model",
                "run(NULL model)");
    check_error(onevit_model_run(model, NULL, 1, logits), ONEVIT_ERROR_ARGUMENT, "onevit_model_run", "input",
                "run(NULL input)");
    check_error(onevit_model_run(model, input, 1, NULL), ONEVIT_ERROR_ARGUMENT, "onevit_model_run", "logits",
                "run(NULL logits)");
    check_error(onevit_model_run(model, input, 0, logits), ONEVIT_ERROR_ARGUMENT, "onevit_model_run", "batch",
                "run(batch 0)");
    check_error(onevit_model_run(model, input, -3, logits), ONEVIT_ERROR_ARGUMENT, "onevit_model_run", "batch",
                "run(batch -3)");
    check(onevit_model_embedding_size(NULL) == -1, "embedding_size(NULL) is -1");
    check_error(onevit_model_embed(NULL, input, 1, logits), ONEVIT_ERROR_ARGUMENT, "onevit_model_embed", "model",
                "embed(NULL model)");
    check_error(onevit_model_embed(model, input, 1, NULL), ONEVIT_ERROR_ARGUMENT, "onevit_model_embed", "embedding",
                "embed(NULL embedding)");
    {
        const int dim = onevit_model_embedding_size(model);
        float* embedding = malloc(sizeof(float) * (size_t)dim);
        int i, finite = dim > 0;
        check(onevit_model_embed(model, input, 1, embedding) == ONEVIT_OK, "embed");
        for (i = 0; i < dim; ++i) finite = finite && isfinite(embedding[i]);
        check(finite, "embed gives embedding_size finite floats");
        free(embedding);
    }

    check_error(onevit_model_classify_file(NULL, image, 1, top), ONEVIT_ERROR_ARGUMENT, "onevit_model_classify_file",
                "model", "classify_file(NULL model)");
    check_error(onevit_model_classify_file(model, NULL, 1, top), ONEVIT_ERROR_ARGUMENT, "onevit_model_classify_file",
                "image_path", "classify_file(NULL path)");
    check_error(onevit_model_classify_file(model, image, 1, NULL), ONEVIT_ERROR_ARGUMENT, "onevit_model_classify_file",
                "out", "classify_file(NULL out)");
    check_error(onevit_model_classify_file(model, image, 0, top), ONEVIT_ERROR_ARGUMENT, "onevit_model_classify_file",
                "top_k", "classify_file(top_k 0)");
    check_error(onevit_model_classify_file(model, "no/such/image.png", 1, top), ONEVIT_ERROR_FAILED,
                "onevit_model_classify_file", "no/such/image.png", "classify_file(missing image)");
    onevit_model_free(NULL);
    free(input);
    free(logits);
}

static int same_string(const char* a, const char* b) { return a != NULL && b != NULL && strcmp(a, b) == 0; }

/* onevit_model_load_with_options: every field set from C, every bad value an argument error naming it. */
static void check_load_options(const char* model_path) {
    onevit_load_options options = ONEVIT_LOAD_OPTIONS_INIT;
    onevit_model* model = NULL;
    const char* native;

    check(onevit_model_load_with_options(model_path, NULL, &model) == ONEVIT_OK, "load_with_options(NULL options)");
    check(same_string(onevit_model_precision(model), "f32"), "no precision: the file's (f32)");
    onevit_model_free(model);

    options.precision = "int8";
    options.threads = 2;
    options.streams = 2;
    options.hint = ONEVIT_HINT_THROUGHPUT;
    options.batch = 4;
    check(onevit_model_load_with_options(model_path, &options, &model) == ONEVIT_OK,
          "load_with_options(int8, 2 threads, 2 streams, throughput, batch 4)");
    check(same_string(onevit_model_precision(model), "int8"), "precision int8 from C");
    check(onevit_model_threads(model) == 2 && onevit_model_streams(model) == 2, "threads and streams from C");
    onevit_model_free(model);

    options = (onevit_load_options)ONEVIT_LOAD_OPTIONS_INIT;
    options.precision = "auto";
    check(onevit_model_load_with_options(model_path, &options, &model) == ONEVIT_OK, "load_with_options(auto)");
    native = onevit_model_precision(model);
    check(same_string(native, "f32") || same_string(native, "int8"), "auto is f32 or int8");
    onevit_model_free(model);

    model = (onevit_model*)&failed_checks; /* must be reset to NULL */
    options.precision = "f16";
    check_error(onevit_model_load_with_options(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "f32, bf16, int8 or auto", "load_with_options(precision f16)");
    check(model == NULL, "a refused load sets *out to NULL");
    options.precision = NULL;
    options.struct_size = 0;
    check_error(onevit_model_load_with_options(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "struct_size", "load_with_options(struct_size 0)");
    options.struct_size = sizeof options + 8;
    check_error(onevit_model_load_with_options(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "struct_size", "load_with_options(a newer, larger struct)");
    options.struct_size = sizeof options;
    options.batch = -1;
    check_error(onevit_model_load_with_options(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "batch", "load_with_options(batch -1)");
    options.batch = 0;
    options.hint = 2;
    check_error(onevit_model_load_with_options(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "hint", "load_with_options(hint 2)");
    options.hint = ONEVIT_HINT_LATENCY;
    options.threads = -1;
    check_error(onevit_model_load_with_options(model_path, &options, &model), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "threads", "load_with_options(threads -1)");
    options.threads = 0;
    check_error(onevit_model_load_with_options(NULL, &options, &model), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "path", "load_with_options(NULL path)");
    check_error(onevit_model_load_with_options(model_path, &options, NULL), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_load_with_options", "out", "load_with_options(NULL out)");
    check(onevit_model_precision(NULL) == NULL && onevit_model_threads(NULL) == -1 &&
              onevit_model_streams(NULL) == -1 && onevit_model_output_size(NULL) == -1,
          "the getters of a NULL model");
}

/* onevit_model_run_into writes onevit_model_run's logits into the caller's buffer, and no further. */
static void check_run_into(const onevit_model* model, const float* input, size_t image_size, const float* logits) {
    const float sentinel = -12345.0f;
    const size_t count = image_size * RUN_BATCH;
    size_t needed, i;
    float* output;
    int outputs = onevit_model_output_size(model);
    check(outputs == onevit_model_num_classes(model), "output_size is num_classes for a classifier");
    needed = (size_t)outputs * RUN_BATCH;
    output = malloc(sizeof(float) * (needed + 2));
    for (i = 0; i < needed + 2; ++i) output[i] = sentinel;
    check(onevit_model_run_into(model, input, count, output, needed + 2) == ONEVIT_OK, "run_into");
    check(memcmp(output, logits, sizeof(float) * needed) == 0, "run_into writes onevit_model_run's logits exactly");
    check(output[needed] == sentinel && output[needed + 1] == sentinel, "run_into leaves the floats past the batch");
    check_error(onevit_model_run_into(model, input, count, output, needed - 1), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_run_into", "output holds", "run_into(output one float short)");
    check_error(onevit_model_run_into(model, input, 0, output, needed), ONEVIT_ERROR_ARGUMENT, "onevit_model_run_into",
                "input_count", "run_into(input_count 0)");
    check_error(onevit_model_run_into(model, input, image_size + 1, output, needed), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_run_into", "multiple", "run_into(input_count not whole images)");
    check_error(onevit_model_run_into(NULL, input, count, output, needed), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_run_into", "model", "run_into(NULL model)");
    check_error(onevit_model_run_into(model, NULL, count, output, needed), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_run_into", "input", "run_into(NULL input)");
    check_error(onevit_model_run_into(model, input, count, NULL, needed), ONEVIT_ERROR_ARGUMENT,
                "onevit_model_run_into", "output", "run_into(NULL output)");
    free(output);
}

/* top_k beyond the classes: every class once, then {-1, 0, ""}. */
static void check_top_k_past_classes(const onevit_model* model, const char* image) {
    int classes = onevit_model_num_classes(model);
    int k = classes + 2, rank, seen_sum = 0;
    onevit_prediction* top = malloc(sizeof(onevit_prediction) * (size_t)k);
    check(onevit_model_classify_file(model, image, k, top) == ONEVIT_OK, "classify_file(top_k > classes)");
    for (rank = 0; rank < classes; ++rank) seen_sum += top[rank].index;
    check(seen_sum == classes * (classes - 1) / 2, "top_k > classes lists every class");
    for (rank = classes; rank < k; ++rank)
        check(top[rank].index == -1 && top[rank].prob == 0.0f && strcmp(top[rank].label, "") == 0,
              "top_k > classes pads with {-1, 0, \"\"}");
    free(top);
}

/* onevit_last_error is per thread: a new thread has none, and its failure leaves ours alone. */
static void* fail_in_other_thread(void* message_seen_first) {
    strncpy((char*)message_seen_first, onevit_last_error(), 255);
    onevit_model_run(NULL, NULL, 0, NULL);
    return NULL;
}

static void check_last_error_per_thread(void) {
    char seen_by_thread[256] = "not run";
    char ours[256];
    pthread_t thread;
    onevit_model_classify_file(NULL, "x.png", 1, NULL);
    strncpy(ours, onevit_last_error(), sizeof ours - 1);
    ours[sizeof ours - 1] = '\0';
    check(pthread_create(&thread, NULL, fail_in_other_thread, seen_by_thread) == 0, "pthread_create");
    pthread_join(thread, NULL);
    check(strcmp(seen_by_thread, "") == 0, "a new thread's last error is empty");
    check(strcmp(onevit_last_error(), ours) == 0 && strstr(ours, "onevit_model_classify_file") != NULL,
          "another thread's failure leaves this thread's last error alone");
}

/* The model classifies from several threads at once, with the results of one thread. */
struct concurrent_job {
    const onevit_model* model;
    const char* image;
    onevit_prediction top[TOP_K];
    int status;
};

static void* classify_job(void* job_pointer) {
    struct concurrent_job* job = job_pointer;
    job->status = onevit_model_classify_file(job->model, job->image, TOP_K, job->top);
    return NULL;
}

static void check_concurrent_classify(const onevit_model* model, const char* image, const onevit_prediction* expected) {
    enum { kThreads = 4 };
    struct concurrent_job jobs[kThreads];
    pthread_t threads[kThreads];
    int t, rank;
    for (t = 0; t < kThreads; ++t) {
        jobs[t].model = model;
        jobs[t].image = image;
        check(pthread_create(&threads[t], NULL, classify_job, &jobs[t]) == 0, "pthread_create");
    }
    for (t = 0; t < kThreads; ++t) {
        pthread_join(threads[t], NULL);
        check(jobs[t].status == ONEVIT_OK, "concurrent classify_file succeeds");
        for (rank = 0; rank < TOP_K; ++rank)
            check(jobs[t].top[rank].index == expected[rank].index && jobs[t].top[rank].prob == expected[rank].prob &&
                      jobs[t].top[rank].label == expected[rank].label,
                  "concurrent classify_file gives the same classes, probabilities and label pointers");
    }
}

int main(int argc, char** argv) {
    onevit_model* model = NULL;
    onevit_prediction first[TOP_K] = {{0, 0.0f, NULL}};
    int channels, height, width, classes, i, status;
    size_t image_size;
    float *input, *logits;

    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE...\n", argv[0]);
        return 2;
    }
    if (onevit_model_load(argv[1], NULL, &model) != ONEVIT_OK) {
        fprintf(stderr, "FAIL: %s\n", onevit_last_error());
        return 1;
    }
    check(strcmp(onevit_last_error(), "") == 0, "no last error before any failure");

    for (i = 2; i < argc; ++i) {
        onevit_prediction top[TOP_K];
        status = onevit_model_classify_file(model, argv[i], TOP_K, top);
        if (status == ONEVIT_OK)
            print_classes(argv[i], top, TOP_K);
        else
            printf("%s\terror\t%d\t%s\n", argv[i], status, onevit_last_error());
        if (i == 2 && status == ONEVIT_OK) memcpy(first, top, sizeof first);
    }

    onevit_model_input_shape(model, &channels, &height, &width);
    classes = onevit_model_num_classes(model);
    image_size = (size_t)channels * (size_t)height * (size_t)width;
    input = malloc(sizeof(float) * image_size * RUN_BATCH);
    logits = malloc(sizeof(float) * (size_t)classes * RUN_BATCH);
    fill_input(input, image_size * RUN_BATCH);
    check(onevit_model_run(model, input, RUN_BATCH, logits) == ONEVIT_OK, "run");
    for (i = 0; i < classes * RUN_BATCH; ++i) printf("logits\t%d\t%d\t%.9g\n", i / classes, i % classes, logits[i]);

    check_run_into(model, input, image_size, logits);
    check_load_options(argv[1]);
    check_load_errors(argv[1]);
    check_call_errors(model, argv[2]);
    check_top_k_past_classes(model, argv[2]);
    check_last_error_per_thread();
    check_concurrent_classify(model, argv[2], first);

    free(input);
    free(logits);
    onevit_model_free(model);
    return failed_checks ? 1 : 0;
}
