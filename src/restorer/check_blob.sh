#!/bin/bash
# Checks the linked restorer blob ELF and only then extracts its flat image. The blob runs at an
# address nobody chose at link time, with no loader, from a read+execute mapping, so it must be
# self-contained and position-independent: no relocations, no undefined symbols, no
# constructors, no GOT entries, no writable data. Any violation fails the build, and no image is
# written for cryo_restorer to embed.
#
# usage: check_blob.sh READELF NM OBJCOPY BLOB_ELF OUT_BIN GADGET_OFFSET
set -euo pipefail

readelf=$1 nm=$2 objcopy=$3 elf=$4 out=$5 gadget_offset=$6
rm -f "$out"

fail() {
  echo "check_blob: $elf: $*" >&2
  exit 1
}

# 1. Relocations of any kind (a -pie link turns every absolute address into one).
if "$readelf" -rW "$elf" | grep -q '^Relocation section'; then
  "$readelf" -rW "$elf" >&2
  fail "has relocations (absolute addresses: pointer tables, address-taken globals?)"
fi

# 2. Undefined symbols (libc calls gcc emitted, forgotten definitions).
undefined=$("$nm" -u "$elf")
[[ -z "$undefined" ]] || fail "has undefined symbols: $undefined"

# 3. Sections: everything allocated must be in .blob, except the metadata a -pie link adds.
sections=$("$readelf" -SW "$elf" | sed -n 's/^ *\[ *[1-9][0-9]*\] *//p')
while read -r name type addr off size es rest; do
  flags=""
  # The flags column is empty for non-allocated sections.
  [[ "$rest" =~ ^([A-Za-z]+)\ +[0-9]+\ +[0-9]+\ +[0-9]+$ ]] && flags=${BASH_REMATCH[1]}
  case "$name" in
    .init_array | .fini_array | .preinit_array | .ctors | .dtors)
      fail "has $name: static constructors/destructors cannot run in the blob" ;;
    .tdata | .tbss)
      fail "has $name: thread-local storage does not exist in the blob" ;;
    .got | .got.plt)
      ((16#$size == 0)) || fail "has a GOT with entries ($name, 0x$size bytes)" ;;
  esac
  [[ "$flags" == *A* ]] || continue
  case "$name" in
    .blob | .dynsym | .dynstr | .hash | .gnu.hash) ;;
    .dynamic) ;;  # written by nobody: there is no loader
    *)
      if ((16#$size != 0)); then
        [[ "$flags" == *W* ]] && fail "has writable data in $name (0x$size bytes): the blob is mapped r-x"
        fail "has allocated section $name outside .blob (0x$size bytes): check blob.lds"
      fi ;;
  esac
done <<<"$sections"

# 4. The dynamic symbol table must be empty but for the null entry: nothing imported or exported.
dynsyms=$("$nm" -D "$elf" 2>/dev/null || true)
[[ -z "$dynsyms" ]] || fail "has dynamic symbols: $dynsyms"

# 5. The layout the host relies on (abi.h): entry at 0, "syscall; int3" at the gadget offset.
symbol_value() { "$nm" "$elf" | awk -v s="$1" '$3 == s { print $1 }'; }
[[ "$(symbol_value cryo_blob_start)" == 0000000000000000 ]] || fail "entry is not at offset 0"
gadget=$(symbol_value cryo_blob_syscall_gadget)
((16#$gadget == gadget_offset)) || fail "syscall gadget at 0x$gadget, abi.h says $gadget_offset"

"$objcopy" -O binary -j .blob "$elf" "$out.tmp"
bytes=$(od -An -tx1 -j "$gadget_offset" -N 3 "$out.tmp" | tr -d ' \n')
[[ "$bytes" == 0f05cc ]] || { rm -f "$out.tmp"; fail "gadget bytes are $bytes, want 0f05cc"; }
mv "$out.tmp" "$out"
