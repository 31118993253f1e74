/* SPDX-License-Identifier: MIT */
/* command_helper.c -- agent-tars-command-helper: the command helper of run_command without a
 * sandbox (src/tools/helper.c) as a program of its own, linked with libc only, so that it starts
 * in about a millisecond where the server binary takes several (the dynamic loading of libcurl's
 * dependencies). The server uses it when it lies next to the server binary, and otherwise runs
 * itself as the helper (main.c). Same argv: agent-tars-command-helper --command-helper CMD... */
#include "tools/tools.h"

int main(int argc, char **argv)
{
    return tools_command_helper_main(argc, argv);
}
