// Where a container's story ends, as a watcher tells it.

/** Whether id has reached a terminal event: its exit, or its runtime's failure. */
export function ended(events: readonly { id?: string; type: string }[], id: string): boolean {
  return events.some((e) => e.id === id && (e.type === 'exit' || e.type === 'failed'));
}
