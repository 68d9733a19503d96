#include "tests/fuzz/support/sites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const px_config *fuzz_sites(int with_catch_all) {
  static px_config *cfg[2];
  static const char text[] = "listen: {http: \"127.0.0.1:8080\"}\n"
                             "sites:\n"
                             "  - hosts: [a.test, \"*.w.test\"]\n"
                             "    upstreams: [\"127.0.0.1:9000\"]\n"
                             "  - hosts: [\"*\"]\n"
                             "    upstreams: [\"127.0.0.1:9001\"]\n";
  int i = with_catch_all ? 1 : 0;
  if (cfg[i] == NULL) {
    /* Without the catch-all the text ends before the second site. */
    size_t len =
        with_catch_all ? sizeof(text) - 1 : (size_t)(strstr(text, "  - hosts: [\"*\"]") - text);
    int n = 0;
    cfg[i] = px_config_load_buffer("fuzz.yaml", text, len, stderr, &n);
    if (cfg[i] == NULL) abort();
  }
  return cfg[i];
}
