/**
 * At most one log line per interval for something that can happen thousands of times a second
 * (a flood of refused bus messages): the lines left out are counted, and the next line written
 * says how many there were. The counters in /metrics still count every one.
 */
export class LogThrottle {
  private lastAt = Number.NEGATIVE_INFINITY
  private leftOut = 0

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whether to write this line: null when it is to be left out, otherwise how many lines were
   * left out since the last one written.
   */
  take(): number | null {
    const at = this.now()
    if (at - this.lastAt < this.intervalMs) {
      this.leftOut += 1
      return null
    }
    this.lastAt = at
    const leftOut = this.leftOut
    this.leftOut = 0
    return leftOut
  }

  /** Lines left out since the last one written, forgotten once read (for a last line on stop). */
  drain(): number {
    const leftOut = this.leftOut
    this.leftOut = 0
    return leftOut
  }
}
