/*
 * COM1, a 16550-compatible UART, polled: 115200 baud, 8 data bits, no
 * parity, 1 stop bit. Interrupts stay off; every write waits for the
 * transmit holding register to drain, so output is never lost or reordered.
 */
#include <io.h>
#include <layout.h> /* COM1_PORT and the UART_* registers: generated from linker/arch.ts */
#include <serial.h>

/* Values this driver programs (PC16550D datasheet, Table II). */
#define LCR_8N1 0x03         /* 8 data bits, no parity, 1 stop bit */
#define LCR_DLAB 0x80        /* divisor latch access */
#define FCR_ENABLE_CLEAR 0x07 /* enable the FIFOs and clear both */
#define MCR_DTR_RTS 0x03     /* data terminal ready, request to send */

/* The UART's clock divided by 16: the divisor is this over the baud rate. */
#define UART_BASE_BAUD 115200
#define SERIAL_BAUD 115200

/* Program COM1 for 115200 8N1 with FIFOs on and interrupts off. */
void serial_init(void)
{
	u16 divisor = UART_BASE_BAUD / SERIAL_BAUD;
	outb(COM1_PORT + UART_IER, 0);
	outb(COM1_PORT + UART_LCR, LCR_DLAB);
	outb(COM1_PORT + UART_DLL, divisor & 0xFF);
	outb(COM1_PORT + UART_DLM, divisor >> 8);
	outb(COM1_PORT + UART_LCR, LCR_8N1);
	outb(COM1_PORT + UART_FCR, FCR_ENABLE_CLEAR);
	outb(COM1_PORT + UART_MCR, MCR_DTR_RTS);
}

/* Nothing sent yet counts as the start of a line. */
static bool at_line_start = true;

/* Send one byte once the transmitter has room. */
void serial_putc(char c)
{
	while (!(inb(COM1_PORT + UART_LSR) & UART_LSR_THR_EMPTY))
		;
	outb(COM1_PORT + UART_THR, (u8)c);
	at_line_start = c == '\n';
}

bool serial_at_line_start(void)
{
	return at_line_start;
}

void serial_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		serial_putc(s[i]);
}
