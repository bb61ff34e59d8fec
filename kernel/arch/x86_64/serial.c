/*
 * COM1, a 16550-compatible UART, polled: 115200 baud, 8 data bits, no
 * parity, 1 stop bit. Interrupts stay off; every write waits for the
 * transmit holding register to drain, so output is never lost or reordered.
 */
#include <io.h>
#include <serial.h>

/* The PC's first serial port. */
#define COM1_BASE 0x3F8

/* 16550 registers, as offsets from the base (PC16550D datasheet, Table II). */
#define UART_THR 0 /* transmit holding (write, DLAB = 0) */
#define UART_DLL 0 /* divisor latch low (DLAB = 1) */
#define UART_IER 1 /* interrupt enable (DLAB = 0) */
#define UART_DLM 1 /* divisor latch high (DLAB = 1) */
#define UART_FCR 2 /* FIFO control (write) */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */

#define LCR_8N1 0x03         /* 8 data bits, no parity, 1 stop bit */
#define LCR_DLAB 0x80        /* divisor latch access */
#define FCR_ENABLE_CLEAR 0x07 /* enable the FIFOs and clear both */
#define MCR_DTR_RTS 0x03     /* data terminal ready, request to send */
#define LSR_THR_EMPTY 0x20   /* the transmitter can take a byte */

/* The UART's clock divided by 16: the divisor is this over the baud rate. */
#define UART_BASE_BAUD 115200
#define SERIAL_BAUD 115200

/* Program COM1 for 115200 8N1 with FIFOs on and interrupts off. */
void serial_init(void)
{
	u16 divisor = UART_BASE_BAUD / SERIAL_BAUD;
	outb(COM1_BASE + UART_IER, 0);
	outb(COM1_BASE + UART_LCR, LCR_DLAB);
	outb(COM1_BASE + UART_DLL, divisor & 0xFF);
	outb(COM1_BASE + UART_DLM, divisor >> 8);
	outb(COM1_BASE + UART_LCR, LCR_8N1);
	outb(COM1_BASE + UART_FCR, FCR_ENABLE_CLEAR);
	outb(COM1_BASE + UART_MCR, MCR_DTR_RTS);
}

/* Nothing sent yet counts as the start of a line. */
static bool at_line_start = true;

/* Send one byte once the transmitter has room. */
void serial_putc(char c)
{
	while (!(inb(COM1_BASE + UART_LSR) & LSR_THR_EMPTY))
		;
	outb(COM1_BASE + UART_THR, (u8)c);
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
