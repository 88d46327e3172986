/** The cache key of a node: NUL cannot occur in service, env or tag text that matters. */
export function nodeKey(service: string, env: string, edgeTags: readonly string[]): string {
  return service + '\u0000' + env + '\u0000' + edgeTags.join('\u0000')
}
