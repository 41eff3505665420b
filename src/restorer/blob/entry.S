// Entry of the restorer blob. The host jumps to offset 0 with rsp = top of the blob stack and
// rdi = Arena*. Offset kSyscallGadgetOffset (8, see abi.h) holds "syscall; int3", which the host
// uses for remote system calls once the blob has stopped.
        .section .text.entry, "ax", @progbits
        .globl  cryo_blob_start
        .hidden cryo_blob_start
cryo_blob_start:
        jmp     cryo_blob_entry
        .fill   8 - (. - cryo_blob_start), 1, 0xcc   // int3 padding up to the gadget
        .globl  cryo_blob_syscall_gadget
        .hidden cryo_blob_syscall_gadget
cryo_blob_syscall_gadget:
        syscall
        int3
cryo_blob_entry:
        // The jump left rsp at the stack top; make the C++ code see the ABI's alignment for a
        // call (rsp % 16 == 8 at function entry) whatever the host passed.
        andq    $-16, %rsp
        xorl    %ebp, %ebp
        call    cryo_restorer_main
        ud2

// long cryo_blob_clone_thread(clone_args* rdi, size rsi, const ThreadSpec* rdx, const Arena* rcx)
// clone3 keeps every register but rax, rcx and r11 (and rsp in the child): the child finds the
// spec and the arena in rdx and r8 and calls cryo_blob_thread_main on its own stack, never
// returning here; the caller gets clone3's result.
        .text
        .globl  cryo_blob_clone_thread
        .hidden cryo_blob_clone_thread
cryo_blob_clone_thread:
        movq    %rcx, %r8
        movl    $435, %eax              // __NR_clone3
        syscall
        testq   %rax, %rax
        jnz     1f
        movq    %rdx, %rdi
        movq    %r8, %rsi
        andq    $-16, %rsp
        xorl    %ebp, %ebp
        call    cryo_blob_thread_main
        ud2
1:      ret

        .section .note.GNU-stack, "", @progbits
