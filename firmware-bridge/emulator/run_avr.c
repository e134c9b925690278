/* Runs a firmware ELF on an emulated ATmega328P (simavr) with UART0 on a
 * pseudo-terminal, so the agent talks to the real firmware binary.
 *   run_avr FIRMWARE.elf [LINK]
 * Prints the pty path on stdout; with LINK, also makes LINK a symlink to it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>
#include <simavr/parts/uart_pty.h>

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FIRMWARE.elf [LINK]\n", argv[0]);
    return 2;
  }
  elf_firmware_t fw;
  memset(&fw, 0, sizeof fw);
  if (elf_read_firmware(argv[1], &fw) != 0) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  strcpy(fw.mmcu, "atmega328p");
  fw.frequency = 16000000;
  avr_t *avr = avr_make_mcu_by_name(fw.mmcu);
  if (!avr) return 1;
  avr_init(avr);
  avr_load_firmware(avr, &fw);

  static uart_pty_t uart;
  uart_pty_init(avr, &uart);
  uart_pty_connect(&uart, '0');
  if (argc > 2) {
    unlink(argv[2]);
    if (symlink(uart.pty.slavename, argv[2]) != 0) perror("symlink");
  }
  printf("%s\n", uart.pty.slavename);
  fflush(stdout);

  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  while (!stop) {
    int state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) break;
  }
  uart_pty_stop(&uart);
  if (argc > 2) unlink(argv[2]);
  return 0;
}
