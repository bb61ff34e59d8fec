; Program entry. The kernel starts a program at _start with rsp pointing at
; argc, then argv[0..argc-1], NULL, envp..., NULL (System V AMD64 ABI §3.4.1);
; rsp is 16-byte aligned there. Nothing is expected in other registers.
bits 64
section .text.start progbits alloc exec nowrite align=16
global _start
extern __ulib_start

_start:
	xor ebp, ebp            ; the outermost frame: backtraces stop here
	mov rdi, rsp            ; __ulib_start(sp)
	and rsp, -16            ; the call below must find rsp 16-byte aligned
	call __ulib_start
	ud2                     ; __ulib_start does not return
