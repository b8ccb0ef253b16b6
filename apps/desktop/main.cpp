// onevit-desktop MODEL [IMAGE]: a GTK 4 window that shows where a ViT looked.
// Open an image (button or drop): the photo with the attention rollout
// heat-map over the model's input crop (outlined), and the top-5 classes. The model is loaded once, at
// start; each image runs on a worker thread and comes back to the UI thread
// through g_idle_add. Once a result is on screen, the window's top-1 line is
// printed on stdout ("shown: LABEL P% | IMAGE | window WxH", or for a model
// without a classifier "shown: no classifier (attention rollout only) | ..."),
// so that a test — or a script — knows what the user sees.
#include <gtk/gtk.h>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "explanation.hpp"
#include "latest_request_worker.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"

namespace {

using onevit::desktop::LatestRequestWorker;

constexpr int kTopClasses = 5;

struct Window {
    GtkWidget* window = nullptr;
    GtkWidget* picture = nullptr;
    GtkWidget* heatmap_toggle = nullptr;
    GtkWidget* image_name = nullptr;
    GtkWidget* classes = nullptr;
    GdkTexture* photo = nullptr;    // owned
    GdkTexture* overlay = nullptr;  // owned
    std::string painted_line;       // printed after the next frame is painted
    gulong after_paint = 0;
};

struct App {
    const onevit::Model& model;
    std::string model_name;
    std::optional<std::string> first_image;
    Window ui;
    bool closed = false;
    std::unique_ptr<LatestRequestWorker> worker;  // last: its job uses everything above
};

// One image's outcome, from the worker thread to the UI thread.
struct Outcome {
    App* app;
    std::string image;
    std::optional<onevit::Explanation> explanation;
    std::string error;
};

GdkTexture* texture_of(const onevit::Image& image) {
    GBytes* bytes = g_bytes_new(image.pixels.data(), image.pixels.size());
    GdkTexture* texture =
        gdk_memory_texture_new(image.width, image.height, GDK_MEMORY_R8G8B8, bytes, std::size_t(image.width) * 3);
    g_bytes_unref(bytes);
    return texture;
}

void show_picture(Window& ui) {
    const bool heatmap = gtk_check_button_get_active(GTK_CHECK_BUTTON(ui.heatmap_toggle));
    gtk_picture_set_paintable(GTK_PICTURE(ui.picture), GDK_PAINTABLE(heatmap ? ui.overlay : ui.photo));
}

void on_after_paint(GdkFrameClock* clock, gpointer data) {
    Window& ui = *static_cast<Window*>(data);
    // The surface's size: the window as the screen holds it, with the margins
    // that GTK's own title bar and frame draw around the widgets.
    GdkSurface* surface = gtk_native_get_surface(GTK_NATIVE(ui.window));
    std::printf("%s | window %dx%d\n", ui.painted_line.c_str(), gdk_surface_get_width(surface),
                gdk_surface_get_height(surface));
    std::fflush(stdout);
    g_signal_handler_disconnect(clock, ui.after_paint);
    ui.after_paint = 0;
}

// On the UI thread.
gboolean show_outcome(gpointer data) {
    std::unique_ptr<Outcome> outcome(static_cast<Outcome*>(data));
    App& app = *outcome->app;
    if (app.closed) return G_SOURCE_REMOVE;
    Window& ui = app.ui;
    const std::string name = std::filesystem::path(outcome->image).filename().string();
    if (!outcome->explanation) {
        std::fprintf(stderr, "onevit-desktop: error: %s\n", outcome->error.c_str());
        gtk_label_set_text(GTK_LABEL(ui.image_name), name.c_str());
        gtk_label_set_text(GTK_LABEL(ui.classes), outcome->error.c_str());
        return G_SOURCE_REMOVE;
    }
    const onevit::Explanation& e = *outcome->explanation;
    g_clear_object(&ui.photo);
    g_clear_object(&ui.overlay);
    ui.photo = texture_of(e.photo);
    ui.overlay = texture_of(e.overlay);
    show_picture(ui);
    gtk_label_set_text(GTK_LABEL(ui.image_name), name.c_str());
    std::string lines = e.top.empty() ? std::string("No classifier: the heat-map is the attention rollout.") : "";
    for (const onevit::Prediction& p : e.top) {
        char* name_markup = g_markup_escape_text(onevit::prediction_name(p).c_str(), -1);
        lines += fmt::format("{}{:5.1f}%  {}{}\n", lines.empty() ? "<b>" : "", 100.f * p.prob, name_markup,
                             lines.empty() ? "</b>" : "");
        g_free(name_markup);
    }
    gtk_label_set_markup(GTK_LABEL(ui.classes), lines.c_str());

    ui.painted_line = fmt::format("shown: {} | {}", onevit::headline(e), outcome->image);
    if (ui.after_paint == 0) {
        GdkFrameClock* clock = gtk_widget_get_frame_clock(ui.window);
        ui.after_paint = g_signal_connect(clock, "after-paint", G_CALLBACK(on_after_paint), &ui);
    }
    gtk_widget_queue_draw(ui.window);
    return G_SOURCE_REMOVE;
}

// On the worker thread.
void explain_on_worker(App& app, const std::string& image) {
    auto outcome = std::make_unique<Outcome>(Outcome{&app, image, std::nullopt, {}});
    try {
        outcome->explanation = onevit::explain_image(app.model, image, kTopClasses);
    } catch (const std::exception& e) {
        outcome->error = e.what();
    }
    g_idle_add(show_outcome, outcome.release());
}

void open_image(App& app, const std::string& path) {
    gtk_label_set_text(GTK_LABEL(app.ui.image_name), std::filesystem::path(path).filename().c_str());
    gtk_label_set_text(GTK_LABEL(app.ui.classes), "Running the model...");
    app.worker->request(path);
}

void on_file_chosen(GtkNativeDialog* dialog, int response, gpointer data) {
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile* file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        if (char* path = g_file_get_path(file)) {
            open_image(*static_cast<App*>(data), path);
            g_free(path);
        }
        g_object_unref(file);
    }
    g_object_unref(dialog);
}

void on_open_clicked(GtkButton*, gpointer data) {
    App& app = *static_cast<App*>(data);
    GtkFileChooserNative* chooser = gtk_file_chooser_native_new("Open an image", GTK_WINDOW(app.ui.window),
                                                                GTK_FILE_CHOOSER_ACTION_OPEN, "_Open", "_Cancel");
    GtkFileFilter* filter = gtk_file_filter_new();
    gtk_file_filter_set_name(filter, "JPEG and PNG images");
    for (const char* pattern : {"*.jpg", "*.jpeg", "*.png", "*.JPG", "*.JPEG", "*.PNG"})
        gtk_file_filter_add_pattern(filter, pattern);
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(chooser), filter);
    g_object_unref(filter);
    g_signal_connect(chooser, "response", G_CALLBACK(on_file_chosen), &app);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(chooser));
}

gboolean on_drop(GtkDropTarget*, const GValue* value, double, double, gpointer data) {
    if (!G_VALUE_HOLDS(value, G_TYPE_FILE)) return FALSE;
    char* path = g_file_get_path(G_FILE(g_value_get_object(value)));
    if (!path) return FALSE;  // not a local file
    open_image(*static_cast<App*>(data), path);
    g_free(path);
    return TRUE;
}

void on_heatmap_toggled(GtkCheckButton*, gpointer data) {
    Window& ui = *static_cast<Window*>(data);
    if (ui.photo) show_picture(ui);
}

void on_destroy(GtkWidget*, gpointer data) {
    App& app = *static_cast<App*>(data);
    app.closed = true;
    g_clear_object(&app.ui.photo);
    g_clear_object(&app.ui.overlay);
}

GtkWidget* build_window(GtkApplication* application, App& app) {
    Window& ui = app.ui;
    ui.window = gtk_application_window_new(application);
    gtk_window_set_title(GTK_WINDOW(ui.window), fmt::format("onevit explain: {}", app.model_name).c_str());
    gtk_window_set_default_size(GTK_WINDOW(ui.window), 800, 520);

    GtkWidget* header = gtk_header_bar_new();
    GtkWidget* open = gtk_button_new_with_mnemonic("_Open...");
    g_signal_connect(open, "clicked", G_CALLBACK(on_open_clicked), &app);
    gtk_header_bar_pack_start(GTK_HEADER_BAR(header), open);
    ui.heatmap_toggle = gtk_check_button_new_with_mnemonic("_Heat-map");
    gtk_check_button_set_active(GTK_CHECK_BUTTON(ui.heatmap_toggle), TRUE);
    g_signal_connect(ui.heatmap_toggle, "toggled", G_CALLBACK(on_heatmap_toggled), &ui);
    gtk_header_bar_pack_end(GTK_HEADER_BAR(header), ui.heatmap_toggle);
    gtk_window_set_titlebar(GTK_WINDOW(ui.window), header);

    GtkWidget* content = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 16);
    for (auto set_margin : {gtk_widget_set_margin_top, gtk_widget_set_margin_bottom, gtk_widget_set_margin_start,
                            gtk_widget_set_margin_end})
        set_margin(content, 16);
    ui.picture = gtk_picture_new();
    gtk_picture_set_can_shrink(GTK_PICTURE(ui.picture), TRUE);
    gtk_picture_set_content_fit(GTK_PICTURE(ui.picture), GTK_CONTENT_FIT_CONTAIN);
    gtk_widget_set_size_request(ui.picture, 448, 448);
    gtk_widget_set_hexpand(ui.picture, TRUE);
    gtk_widget_set_vexpand(ui.picture, TRUE);
    gtk_box_append(GTK_BOX(content), ui.picture);

    GtkWidget* side = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_widget_set_size_request(side, 280, -1);
    ui.image_name = gtk_label_new("Open an image, or drop one on this window.");
    gtk_label_set_wrap(GTK_LABEL(ui.image_name), TRUE);
    gtk_label_set_xalign(GTK_LABEL(ui.image_name), 0);
    gtk_widget_add_css_class(ui.image_name, "title-4");
    ui.classes = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(ui.classes), 0);
    gtk_label_set_yalign(GTK_LABEL(ui.classes), 0);
    gtk_label_set_wrap(GTK_LABEL(ui.classes), TRUE);
    gtk_widget_set_vexpand(ui.classes, TRUE);
    gtk_box_append(GTK_BOX(side), ui.image_name);
    gtk_box_append(GTK_BOX(side), ui.classes);
    gtk_box_append(GTK_BOX(content), side);
    gtk_window_set_child(GTK_WINDOW(ui.window), content);

    GtkDropTarget* drop = gtk_drop_target_new(G_TYPE_FILE, GDK_ACTION_COPY);
    g_signal_connect(drop, "drop", G_CALLBACK(on_drop), &app);
    gtk_widget_add_controller(ui.window, GTK_EVENT_CONTROLLER(drop));
    g_signal_connect(ui.window, "destroy", G_CALLBACK(on_destroy), &app);
    return ui.window;
}

void on_activate(GtkApplication* application, gpointer data) {
    App& app = *static_cast<App*>(data);
    gtk_window_present(GTK_WINDOW(build_window(application, app)));
    if (app.first_image) open_image(app, *app.first_image);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3 || argv[1] == std::string("--help") || argv[1] == std::string("-h")) {
        std::fprintf(argc == 2 ? stdout : stderr,
                     "usage: onevit-desktop MODEL.ovit [IMAGE]\n"
                     "A window that shows an image's top-5 classes and where the model looked.\n");
        return argc == 2 ? 0 : 2;
    }
    std::optional<onevit::Model> model;
    try {
        model.emplace(onevit::Model::load(argv[1]));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "onevit-desktop: error: %s\n", e.what());
        return 1;
    }
    App app{*model,
            std::filesystem::path(argv[1]).filename().string(),
            argc == 3 ? std::optional<std::string>(argv[2]) : std::nullopt,
            {},
            false,
            nullptr};
    app.worker =
        std::make_unique<LatestRequestWorker>([&app](const std::string& image) { explain_on_worker(app, image); });

    GtkApplication* application = gtk_application_new("org.onevit.Desktop", G_APPLICATION_NON_UNIQUE);
    g_signal_connect(application, "activate", G_CALLBACK(on_activate), &app);
    const int status = g_application_run(G_APPLICATION(application), 1, argv);  // our arguments are read above
    app.worker.reset();                                                         // before app and the model go
    g_object_unref(application);
    return status;
}
