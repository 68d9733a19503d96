/*
 * main() for a fuzz driver built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file of the directories (or files)
 * given, so the seed corpus and the saved crashes are regression tests of
 * every build. A missing directory counts as empty.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  size_t cap = 1 << 20, len = 0;
  uint8_t *buf = malloc(cap);
  if (buf) len = fread(buf, 1, cap, f);
  fclose(f);
  if (buf == NULL) return -1;
  /* A copy of exactly `len` bytes, so ASan sees reads past the input. */
  uint8_t *exact = malloc(len ? len : 1);
  if (exact == NULL) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int runs = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) continue;
    if (!S_ISDIR(st.st_mode)) {
      failed |= run_file(argv[i]) != 0;
      runs++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
      failed |= run_file(path) != 0;
      runs++;
    }
    if (d) closedir(d);
  }
  printf("%d inputs replayed\n", runs);
  return failed;
}
