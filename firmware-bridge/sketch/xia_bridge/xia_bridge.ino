// xmpp-iot-agent firmware bridge for an Arduino Uno (ATmega328P).
// Speaks firmware-bridge/PROTOCOL.md on the USB serial port at 115200 baud.
//
// Channels of this reference build (change CHANNELS and readChannel/writeChannel
// for your board):
//   temp   A0, a TMP36 sensor      number  degC  read-only
//   light  A1, a photo-resistor    number  pct   read-only
//   fan    pin 8, a relay          boolean       writable
//   led    pin 13, the board LED   boolean       writable
//
// No heap: every buffer is static. A frame is at most 96 bytes.

#include <xia_bridge.h>

using namespace bridge;

struct Channel {
  const char *id;
  char kind;
  const char *unit;
  bool writable;
};

static const Channel CHANNELS[] = {
    {"temp", 'n', "degC", false},
    {"light", 'n', "pct", false},
    {"fan", 'b', "-", true},
    {"led", 'b', "-", true},
};
static const uint8_t N = sizeof(CHANNELS) / sizeof(CHANNELS[0]);

static const uint8_t FAN_PIN = 8;
static const uint8_t LED_PIN = 13;
static bool outputs[2] = {false, false};

static LineReader reader;
static uint8_t txSeq = 0;
static char out[MAX_LINE + 1];
static unsigned long lastData = 0, lastBeat = 0;

static void send(const char *type, const char *const *fields, uint8_t count) {
  size_t n = encode(out, sizeof out, txSeq++, type, fields, count);
  if (n) Serial.write((const uint8_t *)out, n);
}

static void hello() {
  char count[4];
  utoa(N, count, 10);
  const char *h[] = {"xia-uno", "1.0.0", count};
  send("HELLO", h, 3);
  for (uint8_t i = 0; i < N; i++) {
    char kind[2] = {CHANNELS[i].kind, 0};
    const char *c[] = {CHANNELS[i].id, kind, CHANNELS[i].unit, CHANNELS[i].writable ? "rw" : "ro"};
    send("CH", c, 4);
  }
}

static void readChannel(uint8_t i, char *value) {
  switch (i) {
    case 0: {  // TMP36: 10 mV/°C, 500 mV at 0 °C, 5 V reference
      float celsius = analogRead(A0) * (500.0 / 1023.0) - 50.0;
      dtostrf(celsius, 1, 1, value);
      break;
    }
    case 1:
      utoa((unsigned)(analogRead(A1) * 100UL / 1023UL), value, 10);
      break;
    default:
      value[0] = outputs[i - 2] ? '1' : '0';
      value[1] = 0;
  }
}

static void data() {
  // "id=value" pairs, two per frame to stay well inside the line limit.
  static char pairs[2][28];
  const char *fields[2];
  uint8_t k = 0;
  for (uint8_t i = 0; i < N; i++) {
    char value[12];
    readChannel(i, value);
    strcpy(pairs[k], CHANNELS[i].id);
    strcat(pairs[k], "=");
    strcat(pairs[k], value);
    fields[k] = pairs[k];
    if (++k == 2 || i == N - 1) {
      send("D", fields, k);
      k = 0;
    }
  }
}

static void handleSet(const Frame &f) {
  char ref[4];
  utoa(f.seq, ref, 10);
  const char *reason = 0;
  int8_t found = -1;
  for (uint8_t i = 0; i < N; i++)
    if (!strcmp(CHANNELS[i].id, f.fields[0])) found = (int8_t)i;
  if (found < 0) reason = "unknown";
  else if (!CHANNELS[found].writable) reason = "readonly";
  else if (strcmp(f.fields[1], "0") && strcmp(f.fields[1], "1")) reason = "type";
  if (reason) {
    const char *nak[] = {ref, reason};
    send("NAK", nak, 2);
    return;
  }
  bool on = f.fields[1][0] == '1';
  outputs[found - 2] = on;
  digitalWrite(found == 2 ? FAN_PIN : LED_PIN, on ? HIGH : LOW);
  const char *ack[] = {ref};
  send("ACK", ack, 1);
  data();
}

void setup() {
  pinMode(FAN_PIN, OUTPUT);
  pinMode(LED_PIN, OUTPUT);
  Serial.begin(115200);
  hello();
}

void loop() {
  while (Serial.available() > 0) {
    if (!reader.feed((char)Serial.read())) continue;
    Frame f;
    if (parse(reader.line(), reader.length(), f) != OK) continue;  // dropped, as the protocol says
    if (!strcmp(f.type, "WHO")) hello();
    else if (!strcmp(f.type, "SET")) handleSet(f);
  }
  unsigned long now = millis();
  if (now - lastData >= 1000) {
    lastData = now;
    data();
  }
  if (now - lastBeat >= 2000) {
    lastBeat = now;
    send("HB", 0, 0);
  }
}
