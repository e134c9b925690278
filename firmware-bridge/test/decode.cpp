// Host tool for the shared test vectors: reads lines on stdin, prints one
// canonical decoding per line ("ok <seq> <TYPE> <fields>" or "error <name>"),
// which the TypeScript suite compares with vectors.json. `--self-test` runs
// the C++-only checks (CRC check value, encode/parse round trip, line reader).
#include <stdio.h>
#include <string.h>

#include "../libraries/xia_bridge/bridge.h"

using namespace bridge;

static int failures = 0;
#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                    \
    }                                                                \
  } while (0)

static int selfTest() {
  CHECK(crc8("123456789", 9) == 0xF4);
  char out[128];
  const char *f[] = {"fan", "1"};
  size_t n = encode(out, sizeof out, 7, "SET", f, 2);
  CHECK(n > 0 && strcmp(out, "7 SET fan 1*") > 0);
  Frame fr;
  out[n - 1] = '\0';
  CHECK(parse(out, n - 1, fr) == OK);
  CHECK(fr.seq == 7 && !strcmp(fr.type, "SET") && fr.count == 2 && !strcmp(fr.fields[0], "fan") && !strcmp(fr.fields[1], "1"));
  // A too-long frame is not encoded.
  char big[80];
  memset(big, 'a', 79);
  big[79] = '\0';
  const char *g[] = {big, big};
  CHECK(encode(out, sizeof out, 1, "D", g, 2) == 0);
  // Line reader: an endless line is skipped, the next one is read.
  LineReader r;
  int lines = 0;
  for (int i = 0; i < 500; i++) lines += r.feed('z');
  const char *next = "\n1 HB*C6\n";
  for (const char *c = next; *c; c++) lines += r.feed(*c) ? 1 : 0;
  CHECK(lines == 1 && r.overflows() == 1 && !strcmp(r.line(), "1 HB*C6"));
  if (failures == 0) printf("self-test: 5 passed, 0 failed\n");
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--self-test")) return selfTest();
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    size_t len = strlen(line);
    if (len && line[len - 1] == '\n') line[--len] = '\0';
    Frame f;
    ParseError e = parse(line, len, f);
    if (e != OK) {
      printf("error %s\n", errorName(e));
      continue;
    }
    printf("ok %u %s", f.seq, f.type);
    for (uint8_t i = 0; i < f.count; i++) printf(" %s", f.fields[i]);
    printf("\n");
  }
  return 0;
}
