#include "bridge.h"

#include <string.h>

namespace bridge {

const char *errorName(ParseError e) {
  switch (e) {
    case OK: return "ok";
    case TOO_LONG: return "too-long";
    case NO_CRC: return "no-crc";
    case BAD_CRC: return "crc";
    default: return "malformed";
  }
}

uint8_t crc8(const char *s, size_t n) {
  uint8_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc ^= (uint8_t)s[i];
    for (uint8_t b = 0; b < 8; b++) crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x07) : (uint8_t)(crc << 1);
  }
  return crc;
}

static bool lower(char c) { return c >= 'a' && c <= 'z'; }
static bool upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool digit(char c) { return c >= '0' && c <= '9'; }

bool isId(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 16 || !lower(s[0])) return false;
  for (size_t i = 1; i < n; i++)
    if (!(lower(s[i]) || digit(s[i]) || s[i] == '_')) return false;
  return true;
}

bool isNumber(const char *s) {
  size_t i = 0;
  if (s[i] == '-') i++;
  size_t start = i;
  while (digit(s[i])) i++;
  if (i == start) return false;
  if (s[i] == '.') {
    size_t frac = ++i;
    while (digit(s[i])) i++;
    if (i == frac) return false;
  }
  return s[i] == '\0';
}

static bool inSet(const char *s, size_t maxLen, const char *extra) {
  size_t n = strlen(s);
  if (n < 1 || n > maxLen) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(lower(c) || upper(c) || digit(c) || strchr(extra, c))) return false;
  }
  return true;
}

bool isText(const char *s) { return inSet(s, 24, "_.:-"); }
static bool isWord(const char *s) { return inSet(s, 32, "_.-"); }

static bool isRef(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 3) return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!digit(s[i])) return false;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  return v <= 255;
}

static bool isUnit(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 8) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] <= ' ' || s[i] == '*' || (uint8_t)s[i] >= 0x7f) return false;
  return true;
}

static bool validFields(const char *type, const char *const *f, uint8_t n) {
  if (!strcmp(type, "HELLO")) {
    if (n != 3 || !isWord(f[0]) || !isWord(f[1])) return false;
    size_t l = strlen(f[2]);
    return l >= 1 && l <= 2 && digit(f[2][0]) && (l == 1 || digit(f[2][1]));
  }
  if (!strcmp(type, "CH"))
    return n == 4 && isId(f[0]) && strlen(f[1]) == 1 && strchr("nbs", f[1][0]) && isUnit(f[2]) &&
           (!strcmp(f[3], "ro") || !strcmp(f[3], "rw"));
  if (!strcmp(type, "D")) {
    if (n == 0) return false;
    for (uint8_t i = 0; i < n; i++) {
      const char *eq = strchr(f[i], '=');
      if (!eq || eq == f[i]) return false;
      char id[17];
      size_t l = (size_t)(eq - f[i]);
      if (l > 16) return false;
      memcpy(id, f[i], l);
      id[l] = '\0';
      if (!isId(id) || !(isNumber(eq + 1) || isText(eq + 1))) return false;
    }
    return true;
  }
  if (!strcmp(type, "ACK")) return n == 1 && isRef(f[0]);
  if (!strcmp(type, "NAK")) return n == 2 && isRef(f[0]) && isWord(f[1]);
  if (!strcmp(type, "ERR")) return n == 2 && (!strcmp(f[0], "-") || isId(f[0])) && isWord(f[1]);
  if (!strcmp(type, "HB") || !strcmp(type, "WHO")) return n == 0;
  if (!strcmp(type, "SET")) return n == 2 && isId(f[0]) && (isNumber(f[1]) || isText(f[1]));
  return true;  // unknown types are valid frames (ignored by the receiver)
}

ParseError parse(char *line, size_t len, Frame &out) {
  if (len > 0 && line[len - 1] == '\r') len--;
  if (len + 1 > MAX_LINE) return TOO_LONG;
  if (len < 3 || line[len - 3] != '*') return NO_CRC;
  const char h = line[len - 2], l = line[len - 1];
  auto hex = [](char c) -> int { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  if (hex(h) < 0 || hex(l) < 0) return BAD_CRC;
  size_t body = len - 3;
  if ((uint8_t)(hex(h) * 16 + hex(l)) != crc8(line, body)) return BAD_CRC;
  line[body] = '\0';

  // Split on single spaces; empty parts are malformed.
  const char *parts[MAX_FIELDS + 2];
  uint8_t n = 0;
  char *p = line;
  while (true) {
    if (n == MAX_FIELDS + 2) return MALFORMED;
    parts[n++] = p;
    char *sp = strchr(p, ' ');
    if (!sp) break;
    *sp = '\0';
    p = sp + 1;
  }
  for (uint8_t i = 0; i < n; i++)
    if (parts[i][0] == '\0') return MALFORMED;
  if (n < 2 || !isRef(parts[0])) return MALFORMED;
  size_t tl = strlen(parts[1]);
  if (tl < 1 || tl > 8) return MALFORMED;
  for (size_t i = 0; i < tl; i++)
    if (!upper(parts[1][i])) return MALFORMED;

  unsigned seq = 0;
  for (const char *d = parts[0]; *d; d++) seq = seq * 10 + (unsigned)(*d - '0');
  out.seq = (uint8_t)seq;
  out.type = parts[1];
  out.count = (uint8_t)(n - 2);
  for (uint8_t i = 0; i < out.count; i++) out.fields[i] = parts[i + 2];
  return validFields(out.type, out.fields, out.count) ? OK : MALFORMED;
}

size_t encode(char *out, size_t cap, uint8_t seq, const char *type, const char *const *fields, uint8_t count) {
  size_t limit = cap < MAX_LINE + 1 ? cap : MAX_LINE + 1;
  size_t n = 0;
  char num[4];
  uint8_t v = seq, k = 0;
  char tmp[3];
  do {
    tmp[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (uint8_t i = 0; i < k; i++) num[i] = tmp[k - 1 - i];
  num[k] = '\0';
  const char *parts[MAX_FIELDS + 2];
  uint8_t pn = 0;
  parts[pn++] = num;
  parts[pn++] = type;
  for (uint8_t i = 0; i < count && pn < MAX_FIELDS + 2; i++) parts[pn++] = fields[i];
  for (uint8_t i = 0; i < pn; i++) {
    size_t l = strlen(parts[i]);
    if (n + l + (i ? 1 : 0) + 5 > limit) return 0;  // room for "*XX\n\0"
    if (i) out[n++] = ' ';
    memcpy(out + n, parts[i], l);
    n += l;
  }
  uint8_t c = crc8(out, n);
  const char *hexd = "0123456789ABCDEF";
  out[n++] = '*';
  out[n++] = hexd[c >> 4];
  out[n++] = hexd[c & 15];
  out[n++] = '\n';
  out[n] = '\0';
  return n;
}

bool LineReader::feed(char c) {
  if (c == '\n') {
    bool ready = !skipping_;
    buf_[len_] = '\0';
    len_ready_ = len_;
    len_ = 0;
    skipping_ = false;
    return ready;
  }
  if (skipping_) return false;
  if (len_ + 2 > MAX_LINE) {
    overflows_++;
    skipping_ = true;
    len_ = 0;
    return false;
  }
  buf_[len_++] = (c >= 0x20 && c < 0x7f) || c == '\r' ? c : '\x01';
  return false;
}

}  // namespace bridge
