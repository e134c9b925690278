// Firmware bridge protocol core (PROTOCOL.md), in plain C++ without the heap:
// it builds for the ATmega328P (2 KB RAM) and on the host for unit tests.
#ifndef XIA_BRIDGE_H
#define XIA_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

namespace bridge {

const size_t MAX_LINE = 96;   // bytes per line, including '\n'
const uint8_t MAX_FIELDS = 6;

enum ParseError { OK = 0, TOO_LONG, NO_CRC, BAD_CRC, MALFORMED };

const char *errorName(ParseError e);

uint8_t crc8(const char *s, size_t n);

// A parsed frame points into the (mutated) line buffer.
struct Frame {
  uint8_t seq;
  const char *type;
  const char *fields[MAX_FIELDS];
  uint8_t count;
};

// Parses one line (no '\n'; a trailing '\r' is ignored). Mutates `line`.
ParseError parse(char *line, size_t len, Frame &out);

// Writes "<seq> <type> <fields...>*<crc>\n" and a terminating NUL into out.
// Returns the length without the NUL, or 0 when it would not fit in MAX_LINE.
size_t encode(char *out, size_t cap, uint8_t seq, const char *type, const char *const *fields, uint8_t count);

// Value checks shared by both directions.
bool isId(const char *s);
bool isNumber(const char *s);
bool isText(const char *s);

// Splits a byte stream into lines; an overlong line is skipped to its '\n'.
class LineReader {
 public:
  LineReader() : len_(0), skipping_(false), overflows_(0) {}
  // Feeds one byte; returns true when `line()`/`length()` hold a complete line.
  bool feed(char c);
  char *line() { return buf_; }
  size_t length() const { return len_ready_; }
  uint16_t overflows() const { return overflows_; }

 private:
  char buf_[MAX_LINE];
  size_t len_;
  size_t len_ready_;
  bool skipping_;
  uint16_t overflows_;
};

}  // namespace bridge

#endif
