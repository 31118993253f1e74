/* SPDX-License-Identifier: MIT */
/* assets.c -- the files of ui/ compiled into the binary with the assembler's .incbin (paths are
 * relative to the directory make runs in, the repository root), so the page works offline and
 * nothing is read from disk at run time. Each blob gets a start and an end symbol. */
#include "ui.h"

/* Hidden visibility lets the compiler address the blobs PC-relative (no GOT) in PIE builds. */
#define UI_INCBIN(name, file)                                                                      \
    __asm__(".pushsection .rodata\n"                                                               \
            ".balign 16\n"                                                                         \
            ".globl ui_blob_" #name "\n"                                                           \
            ".hidden ui_blob_" #name "\n"                                                          \
            "ui_blob_" #name ":\n"                                                                 \
            ".incbin \"" file "\"\n"                                                               \
            ".globl ui_blob_" #name "_end\n"                                                       \
            ".hidden ui_blob_" #name "_end\n"                                                      \
            "ui_blob_" #name "_end:\n"                                                             \
            ".byte 0\n"                                                                            \
            ".popsection\n");                                                                      \
    extern const char ui_blob_##name[] __attribute__((visibility("hidden")));                      \
    extern const char ui_blob_##name##_end[] __attribute__((visibility("hidden")))

UI_INCBIN(index, "ui/index.html");
UI_INCBIN(style, "ui/style.css");
UI_INCBIN(app, "ui/app.js");
UI_INCBIN(api, "ui/api.js");
UI_INCBIN(conv, "ui/conversation.js");
UI_INCBIN(md, "ui/markdown.js");
UI_INCBIN(models, "ui/models.js");
UI_INCBIN(attach, "ui/attach.js");

#define HTML "text/html; charset=utf-8"
#define CSS "text/css; charset=utf-8"
#define JS "text/javascript; charset=utf-8"
#define ENTRY(path, type, name)                                                                    \
    {                                                                                              \
        path, type, ui_blob_##name, 0                                                              \
    }

/* Lengths are filled on first use: the end symbols are not constant expressions in C. */
static struct ui_asset assets[] = {
    ENTRY("/index.html", HTML, index),   ENTRY("/style.css", CSS, style),
    ENTRY("/app.js", JS, app),           ENTRY("/api.js", JS, api),
    ENTRY("/conversation.js", JS, conv), ENTRY("/markdown.js", JS, md),
    ENTRY("/models.js", JS, models),     ENTRY("/attach.js", JS, attach),
};

static const char *const ends[] = {
    ui_blob_index_end, ui_blob_style_end, ui_blob_app_end,
    ui_blob_api_end,   ui_blob_conv_end,  ui_blob_md_end, ui_blob_models_end, ui_blob_attach_end,
};

const struct ui_asset *ui__assets(size_t *n)
{
    *n = sizeof(assets) / sizeof(assets[0]);
    if (assets[0].len == 0) {
        for (size_t i = 0; i < *n; i++)
            assets[i].len = (size_t)(ends[i] - assets[i].data);
    }
    return assets;
}
