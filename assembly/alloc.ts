/** Raw heap blocks (TLSF): everything in this core is unmanaged, so nothing waits for a GC. */

/** A zero-filled block. */
export function allocZeroed(size: usize): usize {
  const ptr = heap.alloc(size)
  memory.fill(ptr, 0, size)
  return ptr
}

/** Resizes a block, keeping its contents; heap.realloc cannot take a null block. */
export function grow(ptr: usize, size: usize): usize {
  return ptr == 0 ? heap.alloc(size) : heap.realloc(ptr, size)
}
